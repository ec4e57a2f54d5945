-- addr.lua: setup() sends the threads, in turn, to the addresses the URL's host
-- resolves to that accept a connection: a name with several addresses (a DNS round
-- robin, or localhost's 127.0.0.1 and ::1 when both listen) gets load on each.
--
--   wrk -t2 -c50 -d5s -s bench/lua/addr.lua http://localhost:8080/
--   wharf bench -t2 -c50 -d5s -s bench/lua/addr.lua http://localhost:8080/
local addrs = nil
local n = 0

function setup(thread)
   if not addrs then
      addrs = {}
      for _, a in ipairs(wrk.lookup(wrk.host, wrk.port or "http")) do
         if wrk.connect(a) then table.insert(addrs, a) end
      end
      if #addrs == 0 then
         error("addr.lua: no address of " .. wrk.host .. " accepts a connection")
      end
   end
   n = n + 1
   thread.addr = addrs[(n - 1) % #addrs + 1]
end

function init(args)
   io.stderr:write("thread addr: " .. tostring(wrk.thread.addr) .. "\n")
end
