#!/usr/bin/env bash
# Installs every Debian and npm package that Nimbus needs to build, run and test, on a
# fresh Debian 12. Idempotent: packages already present are left alone. Runs as root, or
# through sudo otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Build: compiler, CMake/Ninja, and the libraries linked into the server.
BUILD_PACKAGES=(
  g++ cmake ninja-build pkg-config git
  libboost-dev            # Boost.Beast / Asio: the HTTP server
  nlohmann-json3-dev      # JSON parsing and writing
  libpugixml-dev          # XML parsing (query and rest-xml protocols)
  libre2-dev              # model pattern constraints (linear-time regular expressions)
  libssl-dev              # SHA-256, HMAC, MD5 (SigV4, ETags)
  libsqlite3-dev          # metadata store
  zlib1g-dev              # compressed embedded service models
  libisal-dev             # CRC32 / CRC32C of S3 checksums (Intel ISA-L: carry-less multiply)
  bubblewrap              # the job sandbox of the local executor (control/)
  libarchive-dev          # model.tar.gz artifacts (tar + gzip)
  libeigen3-dev libopenblas-dev  # linear algebra of the built-in algorithms (ml/)
  libxgboost-dev          # the XGBoost algorithm
  libfaiss-dev libhnswlib-dev    # k-NN: exact and approximate nearest neighbours
  libfasttext-dev         # BlazingText: text classification and Word2Vec
  python3-sklearn python3-pandas python3-joblib  # what script-mode training jobs import
  python3 python3-botocore  # AWS service models (read at build time)
)
# Tests: GoogleTest, clang's libFuzzer, and the real AWS clients.
TEST_PACKAGES=(
  googletest libgtest-dev libgmock-dev
  clang libclang-rt-14-dev
  python3-pytest python3-boto3 python3-cbor2 awscli curl s3cmd rclone
  nginx                   # the peer of the S3 benchmark (bench/s3_bench.sh)
  python3-xgboost fasttext  # reference implementations in the ML quality tests and benchmark
  wrk gunicorn python3-flask  # load generator and peer stack of bench/serving_bench.py
)
NODE_PACKAGES=(nodejs npm)

want=("${BUILD_PACKAGES[@]}")
if [ "${1:-}" != "--build-only" ]; then want+=("${TEST_PACKAGES[@]}"); fi
command -v npm >/dev/null 2>&1 || want+=("${NODE_PACKAGES[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages pinned in package-lock.json (the aws-sdk v2 API models, read at build time).
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.package-lock.json 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error
fi
