-- The Prometheus endpoint of live nodes: the exposition passes `promtool check metrics` with
-- peers, bans, strikes and policy reloads in it; traffic is counted by message type on both
-- ends alike; the HTTP responder answers only GET/HEAD /metrics and bounds its clients.
local H = require("harness")
local socket = require("socket")

local function has(text, plain) return text:find(plain, 1, true) ~= nil end

-- One HTTP exchange: sends `request` as is, returns status code, head, body.
local function http(addr, request)
    local host, port = addr:match("^%[?(.-)%]?:(%d+)$")
    local c = assert(socket.tcp())
    c:settimeout(10)
    assert(c:connect(host, tonumber(port)))
    assert(c:send(request))
    local data, err, partial = c:receive("*a")
    c:close()
    data = data or partial
    assert(data and #data > 0, "no answer: " .. tostring(err))
    local head, body = data:match("^(.-\r\n)\r\n(.*)$")
    return tonumber(head:match("^HTTP/1%.%d (%d+)")), head, body
end

local function scrape(addr)
    local code, head, body = http(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n")
    assert.are.equal(200, code, head)
    return body, head
end

-- The value of one series in an exposition, or nil.
local function value(text, series)
    for line in text:gmatch("[^\n]+") do
        if line:sub(1, #series + 1) == series .. " " then return tonumber(line:sub(#series + 2)) end
    end
end

local function promtool(text, dir)
    assert.is_truthy(os.execute("command -v promtool >/dev/null"),
        "promtool is missing: `make deps` installs the Debian package prometheus")
    local f = dir .. "/metrics.txt"
    H.write_file(f, text)
    local p = io.popen("promtool check metrics < " .. f .. " 2>&1; echo \"exit=$?\"")
    local out = p:read("a")
    p:close()
    return out
end

local function metrics_addr(node)
    return string.format("%s:%d", node.ip, H.free_port(node.ip))
end

describe("metrics endpoint", function()
    it("passes promtool check metrics on a node with peers, bans, strikes and reloads", function()
        H.with_net(function(net)
            local pol = net.dir .. "/policies"
            os.execute("cp -R policies " .. pol)
            -- the directory watch stays out of it: reloads here come from the control socket
            local a = net:node("a", { policy_dir = pol, policy_reload_debounce = 60,
                features = { "fast-sync", "relay.v2" } })
            a.cfg.metrics_listen = metrics_addr(a)
            local b = net:node("b")
            local c = net:node("c")
            a:start()
            a:wait_log("Metrics at http://" .. a.cfg.metrics_listen .. "/metrics")
            b.cfg.persistent_peers = { a:addr() }
            b:start()
            c:start()
            a:ctl({ cmd = "connect", addr = c:addr() })
            a:wait_connected({ b, c })
            -- a strike: wrong magic from an IP of its own
            local raw = assert(socket.tcp())
            assert(raw:bind(net.block .. ".200", 0))
            assert(raw:connect(a.ip, tonumber(a:addr():match(":(%d+)$"))))
            raw:send(string.rep("X", 512)) -- a whole first flight with a wrong magic
            H.wait(function() return a:metric('tn_strikes_total{kind="magic"}') >= 1 end, 5, "a strike")
            raw:close()
            -- a ban, a rejected and an accepted policy reload, a config reload
            assert.is_true(a:ctl({ cmd = "ban", addr = net.block .. ".201", seconds = 600 }).ok)
            local good = H.read_file(pol .. "/bans.lua")
            H.write_file(pol .. "/bans.lua", good .. "\nnot lua at all\n")
            assert.is_false(a:ctl("policy_reload").ok)
            H.write_file(pol .. "/bans.lua", good)
            assert.is_true(a:ctl("policy_reload").ok)
            assert.is_true(a:ctl("config_reload").ok)
            H.sleep(1.2) -- pings both ways, loop-lag samples

            local text, head = scrape(a.cfg.metrics_listen)
            assert.is_truthy(has(head, "Content-Type: text/plain; version=0.0.4"), head)
            assert.are.equal(#text, tonumber(head:match("Content%-Length: (%d+)")))
            assert.are.equal("\n", text:sub(-1))
            local out = promtool(text, net.dir)
            assert.are.equal("exit=0\n", out, "promtool: " .. out)

            -- what an operator looks for is there, with the values of this run
            assert.are.equal(1, value(text, 'tn_connections{dir="in",role="peer"}'))
            assert.are.equal(1, value(text, 'tn_connections{dir="out",role="peer"}'))
            assert.are.equal(1, value(text, "tn_bans_active"))
            assert.is_true(value(text, 'tn_strikes_total{kind="magic"}') >= 1)
            assert.are.equal(2, value(text, 'tn_policy_reloads_total{result="ok"}'))
            assert.are.equal(1, value(text, 'tn_policy_reloads_total{result="rejected"}'))
            assert.are.equal(2, value(text, "tn_policy_generation"))
            assert.are.equal(1, value(text, 'tn_config_reloads_total{result="ok"}'))
            assert.is_true(value(text, 'tn_policy_hook_calls_total{hook="on_misbehavior"}') >= 1)
            local sampled = value(text, 'tn_policy_hook_duration_seconds_count{hook="on_misbehavior"}')
            assert.is_true(sampled >= 1)
            assert.are.equal(0, value(text, "tn_policy_breaker_open"))
            assert.is_true(value(text, 'tn_messages_received_total{type="ping"}') >= 1)
            assert.are.equal(2, value(text, 'tn_messages_sent_total{type="hello"}'))
            assert.is_true(value(text, "tn_loop_lag_seconds_count") >= 1)
            assert.are.equal(1, value(text, 'tn_feature_enabled{flag="fast-sync"}'))
            assert.are.equal(1, value(text, 'tn_feature_enabled{flag="relay.v2"}'))
            local info = '\ntn_build_info{version="[%d.]+",protocol="%d+",network="testnet"} 1\n'
            assert.is_truthy(text:find(info))

            -- a feature switched off by a config reload reads 0, and the text stays valid
            a.cfg.features = { "relay.v2" }
            a:write_config()
            assert.is_true(a:ctl("config_reload").ok)
            text = scrape(a.cfg.metrics_listen)
            assert.are.equal(0, value(text, 'tn_feature_enabled{flag="fast-sync"}'))
            assert.are.equal("exit=0\n", promtool(text, net.dir))
            -- the control socket serves the same exposition
            local via_ctl = a:ctl({ cmd = "metrics", format = "prometheus" }).text
            assert.are.equal("exit=0\n", promtool(via_ctl, net.dir))
        end)
    end)

    it("counts messages and bytes by type alike on both ends of a session", function()
        H.with_net(function(net)
            local a = net:node("a")
            local b = net:node("b", { persistent_peers = { a:addr() } })
            a:start()
            b:start()
            a:wait_connected({ b })
            b:wait_connected({ a })
            H.sleep(1.5) -- a few pings each way
            local ma, mb = a:ctl("metrics").metrics, b:ctl("metrics").metrics
            for _, m in ipairs({ ma, mb }) do
                assert.are.equal(1, m['tn_messages_received_total{type="hello"}'])
                assert.are.equal(1, m['tn_messages_sent_total{type="hello"}'])
                assert.is_true(m['tn_messages_received_total{type="ping"}'] >= 1)
                assert.are.equal(m['tn_messages_received_total{type="ping"}'] * 14,
                    m['tn_message_bytes_received_total{type="ping"}'], "6-byte header, 8-byte nonce")
            end
            -- what one end sent is what the other received
            assert.are.equal(mb['tn_message_bytes_sent_total{type="hello"}'],
                ma['tn_message_bytes_received_total{type="hello"}'])
            assert.are.equal(ma['tn_message_bytes_sent_total{type="hello"}'],
                mb['tn_message_bytes_received_total{type="hello"}'])
        end)
    end)

    it("answers only GET and HEAD /metrics and bounds its clients", function()
        H.with_net(function(net)
            local a = net:node("a")
            a.cfg.metrics_listen = metrics_addr(a)
            a:start()
            local addr = a.cfg.metrics_listen
            local code, head, body = http(addr, "HEAD /metrics HTTP/1.0\r\n\r\n")
            assert.are.equal(200, code)
            assert.are.equal("", body)
            assert.is_true(tonumber(head:match("Content%-Length: (%d+)")) > 1000)
            code = http(addr, "GET /metrics?x=1 HTTP/1.0\r\n\r\n")
            assert.are.equal(200, code)
            local _
            code, _, body = http(addr, "GET / HTTP/1.0\r\n\r\n")
            assert.are.equal(404, code)
            assert.is_truthy(has(body, "/metrics"))
            code, head = http(addr, "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc")
            assert.are.equal(405, code)
            assert.is_truthy(has(head, "Allow: GET, HEAD"))
            code = http(addr, "BREW\r\n\r\n")
            assert.are.equal(400, code)
            code = http(addr, "GET /metrics HTTP/1.0\r\nX: " .. string.rep("a", 9000) .. "\r\n\r\n")
            assert.are.equal(431, code)

            -- 16 connections at once; the 17th is closed at accept
            local host, port = addr:match("^(.-):(%d+)$")
            local idle = {}
            for i = 1, 16 do
                idle[i] = assert(socket.tcp())
                assert(idle[i]:connect(host, tonumber(port)))
            end
            H.sleep(0.2)
            local extra = assert(socket.tcp())
            assert(extra:connect(host, tonumber(port)))
            extra:settimeout(3)
            local data, err = extra:receive("*a")
            assert.are.equal("", data or "", tostring(err))
            extra:close()
            assert.are.equal(1, a:metric("tn_metrics_http_refused_total"))
            -- a client that never sends its request is closed after the timeout (5 s)
            idle[1]:settimeout(8)
            local t0 = H.now()
            local _, ierr = idle[1]:receive("*l")
            assert.are.equal("closed", ierr)
            assert.is_true(H.now() - t0 < 6.5)
            for _, s in ipairs(idle) do s:close() end
            -- and the endpoint still serves
            assert.are.equal(200, (http(addr, "GET /metrics HTTP/1.0\r\n\r\n")))
        end)
    end)

    it("serves next to the P2P port with 'auto', not with '', and refuses a taken address", function()
        H.with_net(function(net)
            local a = net:node("a", { metrics_listen = "auto" })
            a:start()
            local port = tonumber(a:addr():match(":(%d+)$")) + 1
            local addr = string.format("%s:%d", a.ip, port)
            a:wait_log("Metrics at http://" .. addr .. "/metrics")
            assert.are.equal(addr, a:status().metrics)
            assert.are.equal(200, (http(addr, "GET /metrics HTTP/1.0\r\n\r\n")))

            local b = net:node("b") -- metrics_listen = "" (the harness default)
            b:start()
            assert.are.equal("", b:status().metrics)
            assert.are.equal(0, b:count("Metrics at"))

            -- an explicit address that is taken: the node does not start, and says why
            local c = net:node("c", { metrics_listen = addr })
            c:start({ wait = false })
            H.wait(function() return c.exit_code ~= nil end, 10, "c to exit")
            assert.are_not.equal(0, c.exit_code)
            assert.is_truthy(has(c:log(), "Cannot start: cannot serve metrics on " .. addr), c:log())
            -- 'auto' on a taken port only warns
            local d = net:node("d", { metrics_listen = "auto", ip = net.block .. ".99" })
            local blocker = assert(socket.tcp())
            assert(blocker:bind(net.block .. ".99", tonumber(d.cfg.listen:match(":(%d+)$")) + 1))
            assert(blocker:listen(1))
            d:start()
            d:wait_log("Metrics endpoint off: cannot serve metrics on")
            blocker:close()
            assert.is_true(d:ctl("status").ok)
        end)
    end)
end)
