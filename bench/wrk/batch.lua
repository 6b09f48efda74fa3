-- batch.lua: wrk script for POST /api/v1/ingest/batch with CSA_BATCH_SIZE (default 100) records
-- per request, every record with its own invocation_id. Environment as for ingest.lua.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local size = tonumber(os.getenv("CSA_BATCH_SIZE") or "100")
local counter = 0
local prefix

setup = common.setup

function init(args)
  prefix = string.format("%s-b%d-", common.run, thread_no)
end

function request()
  counter = counter + 1
  local items = {}
  for i = 1, size do
    items[i] = common.record("bench-batch", prefix .. counter .. "-" .. i, counter * size + i)
  end
  local body = '{"invocations":[' .. table.concat(items, ",") .. ']}'
  return wrk.format("POST", "/api/v1/ingest/batch", common.headers(), body)
end

done = common.done
