#!/usr/bin/env bash
# Configures and builds Nimbus into ./build (Release). Extra arguments go to ninja.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_TESTS="${NIMBUS_BUILD_TESTS:-ON}"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DNIMBUS_BUILD_TESTS="$BUILD_TESTS" >/dev/null
cmake --build build -- "$@"
