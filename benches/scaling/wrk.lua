-- wrk script for benches/scaling.sh: the peer benchmark's GraphQL POST, plus
--   BENCH_SIZE=200k       header X-Bench-Size: the upstream answers that body file instead
--   BENCH_OPS=N           every request names one of N operations at random (Op000001...):
--                         operationName and the document's operation name both change, so
--                         slogate's label guard and its document cache see N distinct names
-- and a machine-readable summary line (WRK_JSON {...}) at the end.
local f = assert(io.open(os.getenv("BENCH_REQUEST") or "request.json", "rb"))
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = "/graphql"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/graphql-response+json, application/json"
wrk.headers["User-Agent"] = "slogate-scaling-bench/1 (wrk)"
local size = os.getenv("BENCH_SIZE")
if size and size ~= "" then
  wrk.headers["X-Bench-Size"] = size
end

local ops = tonumber(os.getenv("BENCH_OPS") or "0")
if ops and ops > 0 then
  -- A format string from the request: every "CourseDashboard" becomes the drawn name.
  local fmt = body:gsub("%%", "%%%%"):gsub("CourseDashboard", "Op%%06d")
  local n = select(2, body:gsub("CourseDashboard", ""))
  local seeded = false
  request = function()
    if not seeded then
      math.randomseed(os.time() + math.floor(os.clock() * 1e6))
      seeded = true
    end
    local i = math.random(1, ops)
    local args = {}
    for k = 1, n do args[k] = i end
    return wrk.format(nil, nil, nil, string.format(fmt, (unpack or table.unpack)(args)))
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"rps":%.2f,"p50_us":%d,"p75_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"errors":{"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
