-- close.lua: a new connection for every request ("Connection: close").
--
--   wrk -t1 -c100 -d5s -s bench/lua/close.lua http://127.0.0.1:8080/
--
-- The server answers and closes; wrk opens the next connection as soon as a reply
-- is complete, so requests/s here is connections/s.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "json.lua")

wrk.headers["Connection"] = "close"
json_extra.connection = "close"
