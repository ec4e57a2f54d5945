-- auth.lua: authenticate once per thread, then send the token on every request.
--
--   wrk -t2 -c10 -d5s -s bench/lua/auth.lua http://127.0.0.1:8080/
--
-- The first request of each thread is a POST to /echo with the credentials as its
-- body; the reply (wharfd echoes the body, upper-cased by default) is taken as the
-- token, as a login answer would be. Every later request is a GET of the URL's path
-- with "Authorization: Bearer TOKEN". Shows response(status, headers, body).
local token, login = nil, nil

function init(args)
   -- here, not in the main chunk: wrk fills wrk.host (and so Host) only after it ran
   login = wrk.format("POST", "/echo", nil, "user:secret")
end

function request()
   if not token then return login end
   return wrk.format()
end

function response(status, headers, body)
   if not token and status == 200 then
      token = body
      wrk.headers["Authorization"] = "Bearer " .. token
   end
end
