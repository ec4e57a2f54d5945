-- rotate.lua: request() rotates over four query strings of the URL's path, so the
-- client runs Lua for every request (bench/client-vs-wrk's "script" row measures that).
--
--   WRK_CONNECTIONS=100 wrk -t1 -c100 -d5s -s bench/lua/rotate.lua http://127.0.0.1:8080/
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "json.lua")

json_extra.request = "rotating"
local reqs, n = {}, 0

function init(args)
   for i = 1, 4 do reqs[i] = wrk.format(nil, wrk.path .. "?r=" .. i) end
end

function request()
   n = n % 4 + 1
   return reqs[n]
end
