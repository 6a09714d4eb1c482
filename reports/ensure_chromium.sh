#!/usr/bin/env bash
# Headless Chromium for the HTML report test (tests/unit/test_report_html.py) and the screenshot
# docs/report.png: Debian's `chromium` package. Idempotent: does nothing when it is installed.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "reports/ensure_chromium.sh: run as root (apt-get install -y chromium)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null
command -v chromium >/dev/null
