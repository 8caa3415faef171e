-- GET /api/v1/articles/{id}, the id drawn uniformly at random from a file
-- of ids (one a line), named after the URL: wrk ... URL -- IDS_FILE

local ids = {}

function init(args)
   for line in io.lines(args[1]) do
      ids[#ids + 1] = line
   end
   assert(#ids > 0, "no ids in " .. args[1])
   math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
   return wrk.format("GET", "/api/v1/articles/" .. ids[math.random(#ids)])
end
