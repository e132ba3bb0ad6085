-- wrk script for the peer benchmark: a GraphQL POST built once (static request, so wrk's
-- own cost per request is as low as it gets), and a machine-readable summary at the end.
--   BENCH_REQUEST=benches/peer/request.json [BENCH_VARIANT=errors] wrk -s graphql.lua ...
local f = assert(io.open(os.getenv("BENCH_REQUEST") or "request.json", "rb"))
wrk.method = "POST"
wrk.path = "/graphql"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/graphql-response+json, application/json"
wrk.headers["User-Agent"] = "slogate-peer-bench/1 (wrk)"
local variant = os.getenv("BENCH_VARIANT")
if variant and variant ~= "" and variant ~= "ok" then
  -- The upstream answers the `errors` variant of the response for this header.
  wrk.headers["X-Bench-Variant"] = variant
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
