-- stop.lua: each thread stops after a fixed number of requests (argument after "--",
-- default 100), with wrk.thread:stop(); a custom done() prints the totals.
--
--   wrk -t2 -c2 -d5s -s bench/lua/stop.lua http://127.0.0.1:8080/ -- 100
local limit, sent = 100, 0

function init(args)
   limit = tonumber(args[1]) or limit
end

function request()
   sent = sent + 1
   if sent >= limit then wrk.thread:stop() end
   return wrk.request()
end

function done(summary, latency, requests)
   io.write(string.format("done: %d requests, %d bytes, latency p50 %.0fus max %.0fus\n",
                          summary.requests, summary.bytes, latency:percentile(50),
                          latency.max))
end
