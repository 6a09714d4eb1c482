#!/usr/bin/env bash
# The main job: set up, start local Kafka + ClickHouse, simulate and publish a realistic
# sample of department events, sink them into ClickHouse and print what landed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/hzbus demo "$@"
