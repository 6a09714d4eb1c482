#!/usr/bin/env bash
# Idempotent set-up of everything hzbus needs on this machine: the Python venv with the
# pinned packages, the compiled hot paths, the Kafka jars (Maven Central) and ClickHouse (Debian package).
# Fast when already done: each step checks a stamp before doing any work.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv="$root/.venv"
py=${HZBUS_PYTHON:-python3}

if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "bootstrap: Python >= 3.11 is required (found: $("$py" --version 2>&1))" >&2
  exit 2
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "bootstrap: creating the virtual environment in .venv" >&2
  "$py" -m venv "$venv"
fi
stamp="$venv/.hzbus-installed"
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log="$venv/pip-install.log"
  echo "bootstrap: installing hzbus and its pinned dependencies into .venv (pip; log in $log)" >&2
  # setuptools' build warnings go to the log; on a failure its tail is shown
  if ! { "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip &&
         "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "bootstrap: pip install failed (PyPI unreachable? see $log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
# The hot paths compiled with mypyc (hzbus/native.py): seconds when current; plain Python
# (slower, same results) if there is no C compiler.
"$venv/bin/python" -m hzbus.native build ||
  echo "bootstrap: warning: hot paths not compiled; hzbus runs them as plain Python" >&2
# Kafka jars and ClickHouse: `hzbus infra install` is idempotent and fast when present.
"$venv/bin/hzbus" infra install
# Headless Chromium renders the HTML report in its test (Debian's package; skipped when present).
reports/ensure_chromium.sh
