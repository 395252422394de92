#!/usr/bin/env bash
# S3 benchmark: Nimbus against nginx (Debian's, WebDAV PUT), side by side in one run, on the
# same disk and over loopback, with the same load generator (bench/s3_load, SigV4-signed
# keep-alive requests; nginx ignores the signature):
#   (a) PUT and GET throughput of one large object (1 GiB),
#   (b) PUT and GET operations per second of 4 KiB objects at 1, 8 and 32 clients,
# then a table of metric / nimbus / nginx / ratio / target and Nimbus's peak resident memory.
#
# nginx acknowledges a PUT once the body is in the page cache; it never fsyncs. The targets
# are therefore checked at equal durability, against `nimbus serve --sync-writes off`
# (atomic against a crash of the process, as nginx is, not against power loss). The PUTs
# are run once more against Nimbus's default, `--sync-writes on`, which puts each write
# on disk (fsync) before acknowledging it, and printed beside them ("fsync" columns).
#
# Every step runs --repeat times (default 3), alternating between the servers (nimbus,
# nginx, nimbus, nginx, ...), and the table shows each side's median run: this machine's
# speed drifts by as much as a third over minutes, which one run per side cannot tell apart
# from a difference between the servers.
#
# Usage: bench/s3_bench.sh [--build-dir DIR] [--duration SECONDS] [--large-size BYTES]
#                          [--repeat N] [--work-dir DIR] [--keep] [--check]
#   --build-dir   where nimbus and bench/s3_load are built (default: build)
#   --duration    seconds per small-object step (default: 5)
#   --large-size  bytes of the large object (default: 1073741824)
#   --repeat      runs of every step on each server (default: 3)
#   --work-dir    parent of the run's data (default: the build dir; must not be tmpfs)
#   --keep        keep the data and the server logs after the run
#   --check       exit 1 when a target is missed (exit 2 when a step fails either way)
# Needs: nginx (Debian package `nginx`), and `cmake --build build --target nimbus s3_load`.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="$ROOT/build"
DURATION=5
LARGE_SIZE=$((1 << 30))
REPEAT=3
WORK_PARENT=""
KEEP=0
CHECK=0
CONCURRENCIES=(1 8 32)
SMALL_SIZE=4096
GET_KEYS=256
STEP_TIMEOUT=300

while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) BUILD_DIR="$(cd "$2" && pwd)"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --large-size) LARGE_SIZE="$2"; shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --work-dir) WORK_PARENT="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --check) CHECK=1; shift ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "s3_bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

NIMBUS_BIN="${NIMBUS_BINARY:-$BUILD_DIR/nimbus}"
LOAD_BIN="${S3_LOAD_BINARY:-$BUILD_DIR/bench/s3_load}"
NGINX_BIN="${NGINX_BINARY:-$(command -v nginx || echo /usr/sbin/nginx)}"
for bin in "$NIMBUS_BIN" "$LOAD_BIN"; do
  if [ ! -x "$bin" ]; then
    echo "s3_bench: $bin is missing: cmake --build $BUILD_DIR --target nimbus s3_load" >&2
    exit 2
  fi
done
if [ ! -x "$NGINX_BIN" ]; then
  echo "s3_bench: nginx is missing: apt-get install nginx (scripts/install-deps.sh)" >&2
  exit 2
fi

WORK="$(mktemp -d "${WORK_PARENT:-$BUILD_DIR}/s3-bench.XXXXXX")"
NIMBUS_PID=""
SYNC_PID=""
NGINX_PID=""
cleanup() {
  for pid in $NIMBUS_PID $SYNC_PID $NGINX_PID; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in $NIMBUS_PID $SYNC_PID $NGINX_PID; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "$KEEP" = 1 ]; then echo "s3_bench: data and logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export NIMBUS_ROOT_ACCESS_KEY_ID="AKIANIMBUSBENCHROOT1"
export NIMBUS_ROOT_SECRET_ACCESS_KEY="nimbusBenchRootSecretKey0123456789abcdef"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() {  # port pid name
  local deadline=$((SECONDS + 30))
  while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    if ! kill -0 "$2" 2>/dev/null; then
      echo "s3_bench: $3 exited during start-up; log: $WORK/$3.log" >&2
      cat "$WORK/$3.log" >&2 || true
      exit 2
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then echo "s3_bench: $3 did not listen" >&2; exit 2; fi
    sleep 0.05
  done
}

# --- nginx: a foreground master with a generated config, everything under $WORK/nginx.
NGINX_PORT="$(free_port)"
mkdir -p "$WORK/nginx/body" "$WORK/nginx/tmp" "$WORK/www/bench"
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes auto;
user $(id -un) $(id -gn);
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  default_type application/octet-stream;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/tmp;
  fastcgi_temp_path $WORK/nginx/tmp;
  uwsgi_temp_path $WORK/nginx/tmp;
  scgi_temp_path $WORK/nginx/tmp;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
    location / {
      dav_methods PUT;
      create_full_put_path on;
      client_max_body_size 0;
    }
  }
}
EOF
"$NGINX_BIN" -e "$WORK/nginx.log" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" \
  >>"$WORK/nginx.log" 2>&1 &
NGINX_PID=$!
wait_for_port "$NGINX_PORT" "$NGINX_PID" nginx

# --- Nimbus: request logging off, as nginx's access log is; one server without and one
# with fsync before acknowledging.
NIMBUS_PORT="$(free_port)"
"$NIMBUS_BIN" serve --port "$NIMBUS_PORT" --data-dir "$WORK/nimbus-data" --sync-writes off \
  --log-level "${NIMBUS_BENCH_LOG_LEVEL:-warn}" >"$WORK/nimbus.log" 2>&1 &
NIMBUS_PID=$!
wait_for_port "$NIMBUS_PORT" "$NIMBUS_PID" nimbus
SYNC_PORT="$(free_port)"
"$NIMBUS_BIN" serve --port "$SYNC_PORT" --data-dir "$WORK/nimbus-sync-data" --sync-writes on \
  --log-level "${NIMBUS_BENCH_LOG_LEVEL:-warn}" >"$WORK/nimbus-sync.log" 2>&1 &
SYNC_PID=$!
wait_for_port "$SYNC_PORT" "$SYNC_PID" nimbus-sync

echo "s3_bench: nimbus $NIMBUS_BIN on :$NIMBUS_PORT, nginx $("$NGINX_BIN" -v 2>&1 | sed 's/.*: //')" \
  "on :$NGINX_PORT, data in $WORK ($(df --output=source "$WORK" | tail -1)), $(nproc) CPUs"

# --- Measurements. RUNS[server:step] collects s3_load's JSON lines, one per run;
# RESULT[server:step] is then the median one (or one with errors).
declare -A RUNS
declare -A RESULT
FAILED=0

json_field() {  # json name
  sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$1"
}

run_step() {  # server step run s3_load-args...
  local server="$1" step="$2" run="$3" port line rc=0
  shift 3
  case "$server" in
    nimbus) port="$NIMBUS_PORT" ;;
    fsync) port="$SYNC_PORT" ;;
    *) port="$NGINX_PORT" ;;
  esac
  sync  # earlier steps' dirty pages must not be flushed on this step's time
  # A server that stops answering must not hang the run: s3_load has no timeouts of its own.
  line="$(timeout "$STEP_TIMEOUT" "$LOAD_BIN" "$@" --port "$port" 2>&1)" || rc=$?
  if [ "$rc" = 124 ]; then line="{\"errors\":1,\"error\":\"no answer within ${STEP_TIMEOUT}s\"}"; fi
  RUNS["$server:$step"]+="$line"$'\n'
  if [ "$rc" -ne 0 ]; then
    FAILED=1
    local why
    why="$(sed -n 's/.*"error":"\(.*\)"}/\1/p' <<<"$line" | head -c 300)"
    echo "  $server $step FAILED: ${why:-${line:-no output}}" >&2
  fi
  printf '  %-7s %-14s %s/%s %s MiB/s, %s ops/s, p99 %s ms, errors %s\n' "$server" "$step" \
    "$run" "$REPEAT" "$(json_field "$line" mib_per_s)" "$(json_field "$line" ops_per_s)" \
    "$(json_field "$line" p99_ms)" "$(json_field "$line" errors)"
}

repeated() {  # servers step s3_load-args...: every run on each server in turn; "{r}" in an
  # argument becomes the run's number (distinct keys per run)
  local servers="$1" step="$2" run server
  shift 2
  for run in $(seq "$REPEAT"); do
    for server in $servers; do
      run_step "$server" "$step" "$run" "${@//\{r\}/$run}"
    done
  done
}

both() { repeated "nimbus nginx" "$@"; }

median_runs() {  # sets RESULT from RUNS: the median run by MiB/s (ops/s for small objects)
  local key field lines i pick
  for key in "${!RUNS[@]}"; do
    mapfile -t lines <<<"${RUNS[$key]%$'\n'}"
    pick=""
    for i in "${!lines[@]}"; do
      if [ "$(json_field "${lines[$i]}" errors)" != 0 ]; then pick="$i"; fi
    done
    if [ -z "$pick" ]; then
      field=ops_per_s
      case "$key" in *large*) field=mib_per_s ;; esac
      pick="$(for i in "${!lines[@]}"; do echo "$(json_field "${lines[$i]}" "$field") $i"; done |
        sort -g | awk '{ index_of[NR] = $2 } END { print index_of[int((NR + 1) / 2)] }')"
    fi
    RESULT["$key"]="${lines[$pick]}"
  done
}

for port in "$NIMBUS_PORT" "$SYNC_PORT"; do
  timeout 30 "$LOAD_BIN" create-bucket --port "$port" --bucket bench >/dev/null ||
    { echo "s3_bench: CreateBucket on Nimbus failed" >&2; FAILED=1; }
done

echo "large object: $LARGE_SIZE bytes, $REPEAT runs per server"
# One key, overwritten by each run: the page cache then holds one copy per server. (Three
# copies each made the later runs of both servers 2-3 times slower, as memory filled.)
both large-put put-large --key large --size "$LARGE_SIZE"
repeated fsync large-put put-large --key large --size "$LARGE_SIZE"
both large-get get-large --key large --size "$LARGE_SIZE"

echo "small objects: $SMALL_SIZE bytes, ${DURATION}s per step, $REPEAT runs per server"
STEP_TIMEOUT="$(awk "BEGIN {print int($DURATION) + 30}")"
REPEAT=1 both populate populate --prefix get --keys "$GET_KEYS" --size "$SMALL_SIZE"
for c in "${CONCURRENCIES[@]}"; do
  repeated "nimbus nginx fsync" "put-$c" put-small --prefix "put-c$c-{r}" --size "$SMALL_SIZE" \
    --concurrency "$c" --duration "$DURATION"
  both "get-$c" get-small --prefix get --keys "$GET_KEYS" --size "$SMALL_SIZE" \
    --concurrency "$c" --duration "$DURATION"
done
median_runs

vm_hwm_kib() {  # pid...: the sum of the processes' peak resident set, in KiB
  local total=0 pid kib
  for pid in "$@"; do
    kib="$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
    total=$((total + ${kib:-0}))
  done
  echo "$total"
}
NIMBUS_HWM="$(vm_hwm_kib "$NIMBUS_PID")"
SYNC_HWM="$(vm_hwm_kib "$SYNC_PID")"
NGINX_HWM="$(vm_hwm_kib "$NGINX_PID" $(pgrep -P "$NGINX_PID" || true))"

# --- The table.
MISSED=0
cell() {  # server step field: the step's figure, "error" when it had errors, "" when not run
  local line="${RESULT[$1:$2]:-}"
  if [ -z "$line" ] && [ "$1" = fsync ]; then return; fi
  if [ "$(json_field "$line" errors)" != 0 ]; then echo error; else json_field "$line" "$3"; fi
}

ratio_of() {  # a b: a / b to two decimals, "-" when either is not a positive figure
  if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]] && awk "BEGIN {exit !($2 > 0)}"; then
    awk "BEGIN {printf \"%.2f\", $1 / $2}"
  else
    echo -
  fi
}

row() {  # label step field target
  local label="$1" step="$2" field="$3" target="$4" a b f ratio verdict fratio=""
  a="$(cell nimbus "$step" "$field")"
  b="$(cell nginx "$step" "$field")"
  f="$(cell fsync "$step" "$field")"
  ratio="$(ratio_of "$a" "$b")"
  if [ -n "$f" ]; then fratio="$(ratio_of "$f" "$b")"; fi
  if [ "$ratio" != - ] && awk "BEGIN {exit !($ratio >= $target)}"; then
    verdict="ok"
  else
    verdict="MISSED"
    MISSED=1
  fi
  printf '| %-28s | %10s | %10s | %5s | >= %.1fx | %-6s | %10s | %5s |\n' "$label" "$a" "$b" \
    "$ratio" "$target" "$verdict" "$f" "$fratio"
}

echo
printf '| %-28s | %10s | %10s | %5s | %-7s | %-6s | %10s | %5s |\n' metric nimbus nginx ratio \
  target result "fsync" ratio
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..30})" \
  "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..7})" \
  "$(printf -- '-%.0s' {1..9})" "$(printf -- '-%.0s' {1..8})" "$(printf -- '-%.0s' {1..12})" \
  "$(printf -- '-%.0s' {1..7})"
LARGE_LABEL="$(awk "BEGIN {s = $LARGE_SIZE; if (s >= 1073741824) printf \"%g GiB\", s / 1073741824; else printf \"%g MiB\", s / 1048576}")"
row "$LARGE_LABEL PUT (MiB/s)" large-put mib_per_s 0.8
row "$LARGE_LABEL GET (MiB/s)" large-get mib_per_s 0.8
for c in "${CONCURRENCIES[@]}"; do
  clients="$c clients"
  if [ "$c" = 1 ]; then clients="1 client"; fi
  row "4 KiB PUT ops/s, $clients" "put-$c" ops_per_s 0.5
  row "4 KiB GET ops/s, $clients" "get-$c" ops_per_s 0.5
done
echo
echo "nimbus: --sync-writes off (no fsync, as nginx); fsync: --sync-writes on (the default)"
awk -v n="$NIMBUS_HWM" -v f="$SYNC_HWM" -v g="$NGINX_HWM" 'BEGIN {
  printf "Nimbus peak resident memory (VmHWM): %.1f MiB, with fsync %.1f MiB   (nginx, master + workers: %.1f MiB)\n",
    n / 1024, f / 1024, g / 1024 }'

if [ "$FAILED" = 1 ]; then
  echo "s3_bench: some steps failed (see above); logs: $WORK/nimbus.log, $WORK/nginx.log" >&2
  KEEP=1
  exit 2
fi
if [ "$CHECK" = 1 ] && [ "$MISSED" = 1 ]; then exit 1; fi
exit 0
