-- Spreads wrk's threads over several local ports, round-robin, for
-- bench/live.sh with INSTANCES > 1: LIVE_PORTS="18161 18162" wrk -t2 ...
-- Put it after wrk_report.lua (whose setup it keeps) and before the
-- script that makes the requests. Without LIVE_PORTS every thread uses
-- the URL's port.

local report_setup = setup
local ports = {}
for port in (os.getenv("LIVE_PORTS") or ""):gmatch("%d+") do
   ports[#ports + 1] = port
end
local next_port = 0

function setup(thread)
   if report_setup then report_setup(thread) end
   if #ports > 0 then
      thread.addr = wrk.lookup("127.0.0.1", ports[next_port % #ports + 1])[1]
      next_port = next_port + 1
   end
end
