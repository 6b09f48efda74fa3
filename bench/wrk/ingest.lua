-- ingest.lua: wrk script for POST /api/v1/ingest, one record per request, each with its own
-- invocation_id (run id + thread number + counter). Environment: CSA_API_KEY, CSA_RUN_ID,
-- CSA_TIMESTAMP. Usage: wrk -t2 -c64 -d20s --latency -s bench/wrk/ingest.lua http://HOST:PORT
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local counter = 0
local prefix

setup = common.setup

function init(args)
  prefix = string.format("%s-s%d-", common.run, thread_no)
end

function request()
  counter = counter + 1
  local body = common.record("bench-single", prefix .. counter, counter)
  return wrk.format("POST", "/api/v1/ingest", common.headers(), body)
end

done = common.done
