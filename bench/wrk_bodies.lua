-- wrk script of the benchmarks (bench/loadgen.py and bench/v2.py write the bodies and run wrk with it).
--   wrk ... -s bench/wrk_bodies.lua URL -- METHOD CONTENT_TYPE BODY_DIR COUNT [HEADER VALUE]
-- Each connection cycles through COUNT prepared requests (BODY_DIR/body0000.bin ...), built once
-- in init() so the request() hook costs nothing; COUNT 0 sends bodiless requests. HEADER VALUE: one
-- more header for every request (the protocol's Inference-Header-Content-Length: every body of one
-- scenario has the same JSON header, so one value serves them all).
-- done() prints one machine-readable line: wrk's own summary has no p95 and hides error kinds.

local prepared = {}
local index = 0

function init(args)
  local method, content_type, body_dir, count = args[1], args[2], args[3], tonumber(args[4])
  local headers = {}
  if content_type ~= "-" then
    headers["Content-Type"] = content_type
  end
  if args[5] ~= nil then
    headers[args[5]] = args[6]
  end
  if count == 0 then
    prepared[1] = wrk.format(method, nil, headers, nil)
    return
  end
  for i = 1, count do
    local file = assert(io.open(string.format("%s/body%04d.bin", body_dir, i - 1), "rb"))
    local body = file:read("*a")
    file:close()
    prepared[i] = wrk.format(method, nil, headers, body)
  end
end

function request()
  index = index % #prepared + 1
  return prepared[index]
end

function done(summary, latency, requests)
  local e = summary.errors
  local p50, p95, p99 = 0, 0, 0
  if summary.requests > 0 then
    p50, p95, p99 = latency:percentile(50), latency:percentile(95), latency:percentile(99)
  end
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d "
      .. "mean_us=%.1f max_us=%d p50_us=%d p95_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, p50, p95, p99))
end
