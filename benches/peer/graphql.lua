-- wrk script for benches/peer.sh and benches/scaling.sh: a GraphQL POST built once (a static
-- request, so wrk's own cost per request is as low as it gets), and a machine-readable summary
-- line (WRK_JSON {...}) at the end.
--   BENCH_REQUEST=benches/peer/request.json   the request body (required)
--   BENCH_VARIANT=errors  header X-Bench-Variant: the peer upstream answers with an `errors` array
--   BENCH_SIZE=200k       header X-Bench-Size: the scaling upstream answers that body file instead
--   BENCH_OPS=N           every request names one of N operations at random (Op000001...):
--                         operationName and the document's operation name both change, so
--                         slogate's label guard and its document cache see N distinct names
local f = assert(io.open(os.getenv("BENCH_REQUEST") or "request.json", "rb"))
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = "/graphql"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/graphql-response+json, application/json"
wrk.headers["User-Agent"] = "slogate-bench/1 (wrk)"
local variant = os.getenv("BENCH_VARIANT")
if variant and variant ~= "" and variant ~= "ok" then
  wrk.headers["X-Bench-Variant"] = variant
end
local size = os.getenv("BENCH_SIZE")
if size and size ~= "" then
  wrk.headers["X-Bench-Size"] = size
end

-- PACE_MS=N: each connection waits N ms between an answer and its next request (peer.sh's
-- paced latency mode: every proxy then serves about the same rate, below saturation).
local pace = tonumber(os.getenv("PACE_MS") or "")
if pace and pace > 0 then
  delay = function() return pace end
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
