#!/usr/bin/env bash
# tests/e2e/run.sh - runs the browser tests: installs playwright-core from package-lock.json
# when it is missing (never a browser: Debian's /usr/bin/chromium is used), then node --test.
# Needs MG_BIN_DIR (the CMake build with mg-fcgi and mg-installer); ctest sets it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [[ ! -f node_modules/playwright-core/package.json || ! -f node_modules/axe-core/axe.min.js ]]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
[[ -x ${MG_CHROMIUM:-/usr/bin/chromium} ]] || { echo "e2e: chromium not found (apt-get install chromium)" >&2; exit 1; }
exec node --test --test-concurrency=1 --test-reporter=spec "$@" e2e.test.mjs first-load.test.mjs
