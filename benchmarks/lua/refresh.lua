-- Every request spends a refresh token exactly once, as a client does: POST /auth/refresh
-- with a token, then the successor from its answer. A refresh token is single-use (a
-- spent one sent again revokes its whole family), so requests cannot be cycled from a
-- file as lua/requests.lua does; each wrk thread keeps the successors it received and
-- sends each one once. $WRK_REQUESTS_FILE holds fresh tokens, one a line: each thread
-- (thread i of $WRK_THREADS takes lines i, i+n, ...) starts one chain per connection
-- from them, and takes another only if a chain breaks (an answer without a successor).
--
-- done() prints what the script counted, as lines `script NAME COUNT` (benchmarks/wrk.py):
--   rotated       200 answers carrying a successor never seen before: real rotations
--   non_200       answers of any other status (401: a token refused, its family revoked)
--   stale         200 answers without a new successor (none, or one seen before)
--   from_reserve  chains started from the file
--   exhausted     requests sent with no token left (a placeholder the server refuses)

local threads = {}
local counter = 0
local COUNTS = { "rotated", "non_200", "stale", "from_reserve", "exhausted" }

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local count = tonumber(os.getenv("WRK_THREADS") or "1")
   local me = id or 0
   reserve = {}
   seen = {}
   local index = 0
   for line in io.lines(os.getenv("WRK_REQUESTS_FILE")) do
      if line ~= "" then
         if index % count == me then
            reserve[#reserve + 1] = line
            seen[line] = true
         end
         index = index + 1
      end
   end
   if #reserve == 0 then
      error("no refresh tokens for thread " .. me .. " in " .. os.getenv("WRK_REQUESTS_FILE"))
   end
   next_reserve = 1
   ready = {}
   headers = { ["Content-Type"] = "application/json" }
   for _, name in ipairs(COUNTS) do _G[name] = 0 end
end

local function refresh_body(token)
   return '{"refresh_token":"' .. token .. '"}'
end

function request()
   local token
   if #ready > 0 then
      token = table.remove(ready)
   elseif next_reserve <= #reserve then
      token = reserve[next_reserve]
      next_reserve = next_reserve + 1
      from_reserve = from_reserve + 1
   else
      exhausted = exhausted + 1
      token = "no-token-left"
   end
   return wrk.format("POST", "/auth/refresh", headers, refresh_body(token))
end

function response(status, headers, body)
   if status ~= 200 then
      non_200 = non_200 + 1
      return
   end
   local successor = body:match('"refresh_token"%s*:%s*"([^"]+)"')
   if successor == nil or seen[successor] then
      stale = stale + 1
      return
   end
   seen[successor] = true
   rotated = rotated + 1
   ready[#ready + 1] = successor
end

function done(summary, latency, requests)
   for _, name in ipairs(COUNTS) do
      local total = 0
      for _, thread in ipairs(threads) do total = total + thread:get(name) end
      io.write(string.format("script %s %d\n", name, total))
   end
end
