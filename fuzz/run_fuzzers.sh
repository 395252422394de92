#!/usr/bin/env bash
# Builds the protocol fuzzers in <build-dir> (clang, libFuzzer, ASan+UBSan) and runs each
# for <seconds>, starting from the seed corpus in fuzz/corpus/<target>/. New inputs go to
# a scratch directory, so the committed corpus is never modified. Exits non-zero when a
# target crashes, leaks or times out; the crashing input is left in <build-dir>/fuzz-out/.
#
# Usage: fuzz/run_fuzzers.sh <build-dir> <seconds> [target...]
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 <build-dir> <seconds> [target...]" >&2
  exit 2
fi
build_dir=$1
seconds=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(fuzz_json fuzz_rest_json fuzz_cbor fuzz_query fuzz_rest_xml)
fi

cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DNIMBUS_BUILD_FUZZERS=ON -DNIMBUS_BUILD_TESTS=OFF -DNIMBUS_BUILD_BENCH=OFF >/dev/null
ninja -C "$build_dir" -j"${NIMBUS_JOBS:-2}" "${targets[@]}"

out="$build_dir/fuzz-out"
status=0
for t in "${targets[@]}"; do
  scratch="$out/$t/corpus"
  mkdir -p "$scratch" "$out/$t/artifacts"
  echo "== $t: ${seconds}s"
  if ! "$build_dir/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$out/$t/artifacts/" \
      "$scratch" "$root/fuzz/corpus/$t" >"$out/$t/log.txt" 2>&1; then
    echo "!! $t failed; see $out/$t/log.txt and $out/$t/artifacts/" >&2
    tail -40 "$out/$t/log.txt" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "$out/$t/log.txt" | tail -2
  fi
done
exit $status
