-- json.lua: a done() hook that prints wrk's summary as one JSON line, for scripts.
--
--   WRK_CONNECTIONS=100 wrk -t1 -c100 -d5s -s bench/lua/json.lua http://127.0.0.1:8080/
--
-- The line is {"wrk":{...}} with: requests, bytes, duration_us, rps, errors
-- {connect, read, write, status, timeout, total}, latency_us {samples, min, mean,
-- stdev, max, p50, p90, p99, p999}, latency_wrk_us (the same as wrk itself
-- reports them), and the fields a loading script adds (pipeline depth, replies
-- checked, ...). Every other script in this folder loads this file, so each of
-- them prints the line too. Works with Debian's wrk 4.1 (LuaJIT): base library only.
--
-- Latency. Before done() runs, wrk 4.1 "corrects" its histogram for coordinated
-- omission (stats_correct): every sample longer than twice the interval
-- I = duration / (requests / connections) adds synthetic samples at n-I, n-2I, ...
-- down to I. It leaves min untouched, so whatever it adds below min is skipped by
-- the percentile walk: under pipelining (requests counts replies, so I is N times
-- too short) the percentiles come out as 0 and the mean falls below the minimum.
-- Without pipelining it nudges the tail. The correction is exact arithmetic and
-- can be undone: corrected[m] = raw[m] + corrected[m+I] for m > I. This file
-- does that when it knows the connection count (-c), which wrk does not hand to
-- scripts: set WRK_CONNECTIONS in the environment (the harnesses do). Without it,
-- latency_us is wrk's own figure and "latency_raw" is false. Under `wharf bench -s`
-- (which the line's "client" names) the latency is wharf's per-request histogram,
-- never corrected: it is taken as it is.
--
-- Under pipelining wrk records one latency sample per batch (from the batch's
-- write to its last reply), so latency_us describes batches: report its mean as
-- "mean latency per batch".

json_extra = json_extra or {}
-- Per-thread globals (set in init(), which runs in the threads' Lua states) that
-- done() (main state) adds up across threads, or takes from the first thread.
json_thread_counters = json_thread_counters or {}
json_thread_fields = json_thread_fields or {}

local function encode(v)
   local t = type(v)
   if t == "number" then
      if v ~= v or v == math.huge or v == -math.huge then return "null" end
      if v == math.floor(v) and math.abs(v) < 1e15 then
         return string.format("%d", v)
      end
      return string.format("%.3f", v)
   elseif t == "string" then
      return '"' .. v:gsub('[%c"\\]', function(c)
         return string.format("\\u%04x", c:byte())
      end) .. '"'
   elseif t == "boolean" then
      return tostring(v)
   elseif t == "table" then
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      local parts = {}
      for _, k in ipairs(keys) do
         parts[#parts + 1] = encode(k) .. ":" .. encode(v[k])
      end
      return "{" .. table.concat(parts, ",") .. "}"
   end
   return "null"
end
json_encode = encode

local threads = {}
local user_setup = setup
function setup(thread)
   threads[#threads + 1] = thread
   if user_setup then user_setup(thread) end
end

-- Summary of a histogram given as ascending values and their counts.
local function summarize(values, counts)
   local n, sum = 0, 0
   for i = 1, #values do
      n = n + counts[i]; sum = sum + counts[i] * values[i]
   end
   if n == 0 then return nil end
   local mean = sum / n
   local want = { p50 = 50, p90 = 90, p99 = 99, p999 = 99.9 }
   local out = { samples = n, mean = mean, min = values[1], max = values[#values] }
   local var, seen = 0, 0
   for i = 1, #values do
      local v, c = values[i], counts[i]
      var = var + c * (v - mean) ^ 2
      local before = seen
      seen = seen + c
      for k, p in pairs(want) do
         local r = math.max(1, math.ceil(p / 100 * n))
         if before < r and seen >= r then out[k] = v end
      end
   end
   out.stdev = n > 1 and math.sqrt(var / (n - 1)) or 0
   return out
end

-- wrk's histogram with its coordinated-omission correction undone, or nil.
-- latency(i) is the i-th non-empty bucket (value, count) from min up; wrk finds
-- it by a walk from min, so reading all D buckets costs D * (max - min) / 2 steps:
-- above a budget (a very wide spread), give up rather than stall.
local function raw_latency(summary, latency)
   local conns = tonumber(os.getenv("WRK_CONNECTIONS") or "")
   if not conns or conns < 1 then return nil end
   local distinct = #latency
   if distinct == 0 or distinct * (latency.max - latency.min) / 2 > 2e9 then return nil end
   local corrected, order = {}, {}
   for i = 1, distinct do
      local v, c = latency(i)
      corrected[v] = c
      order[i] = v
   end
   local per_conn = math.floor(summary.requests / conns)
   local I = per_conn > 0 and math.floor(summary.duration / per_conn) or 0
   local values, counts = {}, {}
   for _, v in ipairs(order) do
      local c = corrected[v]
      if I > 0 and v > I then c = c - (corrected[v + I] or 0) end
      if c < 0 then return nil end -- not the correction assumed above
      if c > 0 then
         values[#values + 1] = v
         counts[#counts + 1] = c
      end
   end
   return summarize(values, counts)
end

function done(summary, latency, requests)
   local e = summary.errors
   local secs = summary.duration / 1e6
   local wrk_lat = {
      min = latency.min, mean = latency.mean, stdev = latency.stdev,
      max = latency.max,
      p50 = latency:percentile(50), p90 = latency:percentile(90),
      p99 = latency:percentile(99), p999 = latency:percentile(99.9),
   }
   -- wharf bench (wrk.wharf: its version) hands done() its per-request histogram as
   -- measured, never corrected: nothing to undo.
   local raw = wrk.wharf and wrk_lat or raw_latency(summary, latency)
   local out = {
      client = wrk.wharf and ("wharf " .. wrk.wharf) or "wrk",
      requests = summary.requests,
      bytes = summary.bytes,
      duration_us = summary.duration,
      rps = secs > 0 and summary.requests / secs or 0,
      errors = {
         connect = e.connect, read = e.read, write = e.write,
         status = e.status, timeout = e.timeout,
         total = e.connect + e.read + e.write + e.status + e.timeout,
      },
      latency_us = raw or wrk_lat,
      latency_raw = raw ~= nil,
      latency_wrk_us = wrk_lat,
   }
   for _, name in ipairs(json_thread_counters) do
      local sum = 0
      for _, t in ipairs(threads) do sum = sum + (tonumber(t:get(name)) or 0) end
      out[name] = sum
   end
   for _, name in ipairs(json_thread_fields) do
      if threads[1] then out[name] = threads[1]:get(name) end
   end
   for k, v in pairs(json_extra) do out[k] = v end
   io.write('{"wrk":', encode(out), "}\n")
end
