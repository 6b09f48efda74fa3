-- common.lua: shared by ingest.lua and batch.lua (loaded with dofile from the same directory).
--
-- Each wrk thread gets its own number in setup(); every record's invocation_id is
-- "<run>-<thread>-<counter>[-<item>]", so no two requests of a run repeat a record (idempotency
-- would otherwise turn writes into no-ops). done() prints one machine-readable line for
-- bench/ingest.sh:  CSA_RESULT requests=... non2xx=... duration_us=... p50_us=... p99_us=...
local M = {}

M.run = os.getenv("CSA_RUN_ID") or tostring(os.time())
M.key = os.getenv("CSA_API_KEY") or error("CSA_API_KEY is not set")
M.ts = os.getenv("CSA_TIMESTAMP") or "2026-01-02T10:30:00Z"

local threads = {}
local next_id = 0

function M.setup(thread)
  next_id = next_id + 1
  thread:set("thread_no", next_id)
  table.insert(threads, thread)
end

-- One record as JSON text; the same columns bench/ingest.sh writes straight into PostgreSQL.
function M.record(function_name, invocation_id, n)
  local cold = (n % 10 == 0) and "true" or "false"
  return string.format(
    '{"function_name":"%s","invocation_id":"%s","timestamp":"%s","cold_start":%s,' ..
    '"init_duration_ms":%d,"execution_duration_ms":%d,"billed_duration_ms":%d,' ..
    '"memory_used_mb":180,"memory_allocated_mb":512,' ..
    '"module_timings":{"aws-sdk":85.5,"@prisma/client":68,"./src/handlers/payment":4.5},' ..
    '"runtime_version":"nodejs20.x","architecture":"arm64","region":"eu-west-1"}',
    function_name, invocation_id, M.ts, cold, 250 + n % 700, 5 + n % 200, 6 + n % 200)
end

function M.headers()
  return { ["Content-Type"] = "application/json", ["X-API-Key"] = M.key }
end

function M.done(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format(
    "CSA_RESULT requests=%d non2xx=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d " ..
    "duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, non2xx, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end

return M
