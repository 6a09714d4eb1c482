#!/usr/bin/env bash
# The whole test suite: lint, type check, unit, component and integration tests against the
# real Kafka broker and ClickHouse server that `hzbus infra up` starts (one of each per run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/hzbus infra up
echo "== ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check . >/dev/null || { .venv/bin/ruff format --check . >&2; exit 1; }
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
exec .venv/bin/pytest -p no:cacheprovider "$@"
