-- A mixed read/write load over a skewed popularity:
--   wrk ... URL -- IDS_FILE TOKEN [SKEW] [WRITE_SHARE] [LIST_SHARE]
-- IDS_FILE lists published article ids, most popular first (newest first).
-- Popularity follows Zipf's law with exponent SKEW (default 1.1): the k-th
-- id is drawn with probability about proportional to k^-SKEW. Over 900,000
-- ids at 1.1 the first 300 take 58% of requests and the first one 9%, as a
-- few fresh stories do on a news feed. (A plain floor(n * u^k) skewed that
-- far gives the single first id 40%.) WRITE_SHARE
-- (default 0.05) of requests PATCH that article's summary with TOKEN
-- (an admin's access token), LIST_SHARE (default 0.15) read a list page
-- (page 1 mostly, up to 5), the rest read the article. Reads accept gzip.
-- Statuses are counted so errors can be told apart (409: a write lost a
-- race with another write to the same article).

local ids = {}
local token, skew, write_share, list_share
local writes = 0
local read_headers = { ["Accept-Encoding"] = "gzip" }
local write_headers
statuses = {}

function init(args)
   for line in io.lines(args[1]) do
      ids[#ids + 1] = line
   end
   assert(#ids > 0, "no ids in " .. args[1])
   token = assert(args[2], "no token")
   skew = tonumber(args[3] or 1.1)
   write_share = tonumber(args[4] or 0.05)
   list_share = tonumber(args[5] or 0.15)
   write_headers = {
      ["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = "application/json",
   }
   math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

-- Inverse transform of the continuous power law x^-SKEW on [1, n + 1),
-- floored to a rank.
local function popular_id()
   local n, u = #ids + 1, math.random()
   local x
   if math.abs(skew - 1) < 1e-9 then
      x = n ^ u
   else
      local e = 1 - skew
      x = (1 - u * (1 - n ^ e)) ^ (1 / e)
   end
   return ids[math.min(math.floor(x), #ids)]
end

function request()
   local r = math.random()
   if r < write_share then
      writes = writes + 1
      local body = string.format('{"summary":"Edited under load, edit %d at %d."}', writes, os.time())
      return wrk.format("PATCH", "/api/v1/articles/" .. popular_id(), write_headers, body)
   elseif r < write_share + list_share then
      local page = math.floor(5 * math.random() ^ 3) + 1
      return wrk.format("GET", "/api/v1/articles?per_page=20&page=" .. page, read_headers)
   else
      return wrk.format("GET", "/api/v1/articles/" .. popular_id(), read_headers)
   end
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end
