-- wrk script for tests/bench/run-ingest: every request posts one new usage
-- event (event ids unique per run, thread and request).
local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end
function init(args)
  counter = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"event_id":"wrk-%s-%d-%d","customer_id":"site-%05d","metric":"api_calls","quantity":"1.5"}',
    os.getenv("BENCH_RUN") or "0", tid, counter, (counter % 12) + 1)
  return wrk.format(nil, "/v1/usage", nil, body)
end
