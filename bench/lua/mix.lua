-- mix.lua: a request mix -- each request() picks the next of a weighted list of paths.
--
--   wrk -t2 -c50 -d5s -s bench/lua/mix.lua http://127.0.0.1:8080/
--   wharf bench -t2 -c50 -d5s -s bench/lua/mix.lua http://127.0.0.1:8080/
--
-- The mix is fixed (no randomness), so two runs send the same sequence: 3 of every
-- 5 requests go to "/", one to "/stats", one to "/missing" (404: counted by both tools
-- as "Non-2xx or 3xx"). One prebuilt request per entry: no formatting per request.
local mix = { "/", "/", "/stats", "/", "/missing" }
local reqs = {}
local n = 0

function init(args)
   for i, path in ipairs(mix) do reqs[i] = wrk.format("GET", path) end
end

function request()
   n = n + 1
   return reqs[(n - 1) % #reqs + 1]
end
