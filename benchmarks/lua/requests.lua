-- Cycles through prepared requests, one per line of $WRK_REQUESTS_FILE:
--   path <TAB> authorization header or empty <TAB> JSON body or empty
-- with method $WRK_METHOD. Thread i of $WRK_THREADS takes lines i, i+n, i+2n...,
-- so no two threads send the same request and each request comes back only after the
-- thread went through its whole share (what keeps "uncached" runs missing the cache).
-- Requests are formatted once, in init, so the Lua side costs nothing per request.

local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
end

function init(args)
   local method = os.getenv("WRK_METHOD") or "GET"
   local threads = tonumber(os.getenv("WRK_THREADS") or "1")
   local me = id or 0
   requests = {}
   local index = 0
   for line in io.lines(os.getenv("WRK_REQUESTS_FILE")) do
      if index % threads == me then
         local path, auth, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
         local headers = {}
         if auth ~= "" then headers["Authorization"] = auth end
         if body ~= "" then
            headers["Content-Type"] = "application/json"
         else
            body = nil
         end
         requests[#requests + 1] = wrk.format(method, path, headers, body)
      end
      index = index + 1
   end
   if #requests == 0 then
      error("no requests for thread " .. me .. " in " .. os.getenv("WRK_REQUESTS_FILE"))
   end
   position = 0
end

function request()
   position = position % #requests + 1
   return requests[position]
end
