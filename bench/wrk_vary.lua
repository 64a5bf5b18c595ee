-- wrk_vary.lua - gives every request its own query string by appending "&n=<thread>-<count>"
-- (a parameter the API ignores), so that no answer comes from a worker's facet cache:
--   wrk -s bench/wrk_vary.lua 'http://127.0.0.1:PORT/api/models/gallery/facets?category=chat'
thread_id = "0"
local count = 0

function setup(thread)
    thread:set("thread_id", tostring(math.random(1, 1000000000)))
end

function request()
    count = count + 1
    return wrk.format(nil, wrk.path .. "&n=" .. thread_id .. "-" .. count)
end
