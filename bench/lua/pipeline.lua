-- pipeline.lua: N requests in each write (TechEmpower "plaintext" style).
--
--   wrk -t1 -c100 -d5s -s bench/lua/pipeline.lua http://127.0.0.1:8080/ -- 16
--
-- N (default 16) comes after "--"; a second argument sets the path (default: the
-- URL's path). wrk counts each reply as a request, so requests/s is per request.
-- Latency: wrk records one sample per batch, from its write to the batch's last
-- reply, so the percentiles are per batch; report latency_us.mean as the mean
-- latency per batch.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "json.lua")

json_thread_fields = { "pipeline" }
json_extra.latency_per = "batch"

local batch

function init(args)
   local n = tonumber(args[1] or "16")
   if not n or n < 1 then
      error("pipeline.lua: the depth must be a positive number, got " .. tostring(args[1]))
   end
   n = math.floor(n)
   local path = args[2]
   local one = wrk.format("GET", path)
   local parts = {}
   for i = 1, n do parts[i] = one end
   batch = table.concat(parts)
   pipeline = n
end

function request()
   return batch
end
