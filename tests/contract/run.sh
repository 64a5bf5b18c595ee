#!/usr/bin/env bash
# tests/contract/run.sh - the contract tests of docs/openapi.yaml: installs the pinned npm
# tooling from package-lock.json when it is missing (swagger-parser, ajv, openapi-typescript,
# openapi-fetch, typescript), then runs, with node --test: the validator and example checks
# (openapi.test.mjs), every documented answer against a live stack (contract.test.mjs), and
# a client generated from the document, compiled with tsc and run against a live stack
# (client.test.mjs). Needs MG_BIN_DIR (the CMake build with mg-fcgi and mg-installer); ctest
# sets it. MG_OPENAPI=FILE tests another copy of the document.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [[ ! -f node_modules/.package-lock.json ]] || ! cmp -s package-lock.json node_modules/.package-lock.json.src 2>/dev/null; then
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.package-lock.json.src
fi
exec node --test --test-reporter=spec --test-concurrency=1 "$@" openapi.test.mjs contract.test.mjs client.test.mjs
