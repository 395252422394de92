#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running server on its embedded
# defaults: installs dependencies, builds, then runs `nimbus serve` in the foreground.
# Arguments go to `nimbus serve` (e.g. --port 4566 --data-dir ./nimbus-data).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --build-only
NIMBUS_BUILD_TESTS=OFF scripts/build.sh nimbus
exec build/nimbus serve "$@"
