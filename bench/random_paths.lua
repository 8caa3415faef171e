-- GET a path drawn uniformly at random from a file of paths (one a line),
-- with the headers given on wrk's command line: wrk ... URL -- PATHS_FILE

local paths = {}

function init(args)
   for line in io.lines(args[1]) do
      paths[#paths + 1] = line
   end
   assert(#paths > 0, "no paths in " .. args[1])
   math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
   return wrk.format("GET", paths[math.random(#paths)])
end
