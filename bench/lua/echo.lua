-- echo.lua: POST /echo with a body of a given size, and check every reply.
--
--   wrk -t1 -c100 -d5s -s bench/lua/echo.lua http://127.0.0.1:8080/echo -- 4096 upper
--
-- Arguments after "--": the body size in bytes (default 64; K and M suffixes
-- allowed) and the server's mode, "upper" (wharfd's default: the reply is the body
-- upper-cased) or "echo" (the reply is the body unchanged). A reply that is not
-- 200 or whose body differs counts in "bad_replies" in the JSON line; "checked"
-- counts the replies compared. Checking means wrk hands every body to Lua, which
-- costs wrk (not the server) some speed.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "json.lua")

json_thread_counters = { "checked", "bad_replies" }

local function parse_size(s)
   local num, suffix = tostring(s):match("^(%d+)([KkMm]?)$")
   if not num then error("echo.lua: bad body size '" .. tostring(s) .. "'") end
   local n = tonumber(num)
   if suffix == "K" or suffix == "k" then n = n * 1024 end
   if suffix == "M" or suffix == "m" then n = n * 1024 * 1024 end
   return n
end

local req, expected
checked, bad_replies = 0, 0

function init(args)
   local size = parse_size(args[1] or "64")
   local mode = args[2] or "upper"
   if mode ~= "upper" and mode ~= "echo" then
      error("echo.lua: mode must be 'upper' or 'echo', got '" .. mode .. "'")
   end
   -- Lower-case letters and digits, so upper-casing changes the body visibly.
   local alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
   local chars = {}
   for i = 1, size do
      local k = (i - 1) % #alphabet + 1
      chars[i] = alphabet:sub(k, k)
   end
   local body = table.concat(chars)
   expected = mode == "upper" and body:upper() or body
   local path = wrk.path
   if path == "/" then path = "/echo" end
   req = wrk.format("POST", path,
                    { ["Content-Type"] = "application/octet-stream" }, body)
end

function request()
   return req
end

function response(status, headers, body)
   checked = checked + 1
   if status ~= 200 or body ~= expected then
      bad_replies = bad_replies + 1
   end
end
