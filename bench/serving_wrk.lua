-- wrk script of bench/serving_bench.py: every request is the same POST, read once from the file
-- named by SERVING_BENCH_REQUEST ("Name: value" header lines, an empty line, then the body
-- bytes), so wrk formats it once per thread and the load generator costs the same for every
-- target. For Nimbus the headers carry a SigV4 signature made in advance; Nimbus verifies it on
-- every request. done() prints one machine-readable line (prefix SERVING_BENCH_RESULT) with the
-- counts and latency percentiles (microseconds) that serving_bench.py parses.

local path = os.getenv("SERVING_BENCH_REQUEST")
if not path then
  error("SERVING_BENCH_REQUEST is not set")
end
local file = assert(io.open(path, "rb"))
local raw = file:read("*a")
file:close()

local split = raw:find("\n\n", 1, true)
if not split then
  error(path .. ": no empty line between the headers and the body")
end
wrk.method = "POST"
wrk.body = raw:sub(split + 2)
for line in raw:sub(1, split):gmatch("([^\n]+)\n") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  if not name then
    error(path .. ": bad header line " .. line)
  end
  wrk.headers[name] = value
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'SERVING_BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"status_errors": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"timeouts": %d, "p50_us": %.0f, "p90_us": %.0f, "p99_us": %.0f, "mean_us": %.1f, ' ..
    '"max_us": %.0f}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
