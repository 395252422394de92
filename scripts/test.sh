#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to every test: installs dependencies,
# builds, runs the unit tests (CTest), the integration tests (pytest, against the real
# server with boto3 and the AWS CLI) and a short run of every fuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh

echo "== unit tests"
ctest --test-dir build --output-on-failure -j2 --timeout 300

echo "== fuzzers"
fuzz/run_fuzzers.sh build-fuzz "${NIMBUS_FUZZ_SECONDS:-10}"

echo "== integration tests"
NIMBUS_BINARY="$PWD/build/nimbus" /usr/bin/python3 -m pytest -q tests/integration
