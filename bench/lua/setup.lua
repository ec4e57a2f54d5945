-- setup.lua: setup() hands each thread its id, the threads count their requests, and
-- done() prints them per thread (thread:set / thread:get between the states).
--
--   wrk -t2 -c10 -d5s -s bench/lua/setup.lua http://127.0.0.1:8080/
local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   requests = 0
end

function request()
   requests = requests + 1
   return wrk.request()
end

function done(summary, latency, requests)
   for _, thread in ipairs(threads) do
      io.write(string.format("thread %d made %d requests\n", thread:get("id"),
                             thread:get("requests")))
   end
end
