-- wrk script for the Open Inference Protocol benchmark (bench/v2.py writes the bodies and runs wrk with it).
--   wrk ... -s bench/wrk_v2.lua URL -- BODY_DIR COUNT HEADER_LENGTH
-- Like bench/wrk_bodies.lua (POST, prepared requests cycled per connection, one BENCH_RESULT line),
-- plus the binary extension's Inference-Header-Content-Length header ("-" for a JSON-only body).
-- Every body of one scenario has the same JSON header, so one header value serves them all.

local prepared = {}
local index = 0

function init(args)
  local body_dir, count, header_length = args[1], tonumber(args[2]), args[3]
  local headers = {}
  headers["Content-Type"] = "application/octet-stream"
  if header_length == "-" then
    headers["Content-Type"] = "application/json"
  else
    headers["Inference-Header-Content-Length"] = header_length
  end
  for i = 1, count do
    local file = assert(io.open(string.format("%s/body%04d.bin", body_dir, i - 1), "rb"))
    local body = file:read("*a")
    file:close()
    prepared[i] = wrk.format("POST", nil, headers, body)
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
