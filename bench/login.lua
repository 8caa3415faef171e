-- wrk script: wrong-password sign-ins, counting answers by status.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"grant_type":"password","username":"flooded","password":"not the password"}'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  s401, s429, s503, other = 0, 0, 0, 0
end

function response(status, headers, body)
  if status == 401 then s401 = s401 + 1
  elseif status == 429 then s429 = s429 + 1
  elseif status == 503 then s503 = s503 + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local a, b, c, d = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    a = a + thread:get("s401")
    b = b + thread:get("s429")
    c = c + thread:get("s503")
    d = d + thread:get("other")
  end
  io.write(string.format("logins: 401=%d 429=%d 503=%d other=%d\n", a, b, c, d))
end
