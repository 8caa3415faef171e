-- Machine-readable wrk summary for bench/hits.sh, which puts this file in
-- front of every scenario script. One line:
--   HITS-REPORT requests duration_us p50_us p99_us connect read write status timeout
-- and, when a scenario counts statuses in a global `statuses` table, one
--   HITS-STATUS code count
-- line per status seen.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("HITS-REPORT %d %d %d %d %d %d %d %d %d\n",
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(99),
      e.connect, e.read, e.write, e.status, e.timeout))
   local totals = {}
   for _, thread in ipairs(threads) do
      for code, count in pairs(thread:get("statuses") or {}) do
         totals[code] = (totals[code] or 0) + count
      end
   end
   for code, count in pairs(totals) do
      io.write(string.format("HITS-STATUS %d %d\n", code, count))
   end
end
