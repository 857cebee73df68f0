-- Connections between real timenetd processes: connect, log once, lose, reconnect with
-- backoff, simultaneous dials, self-dials and duplicate identities (seed §1, §2-4, §14).
local H = require("harness")

local CONNECTED = "\u{2713} Connected to peer: "

describe("connections", function()
    it("two nodes connect and each logs \u{2713} Connected exactly once", function()
        H.with_net(function(net)
            local b = net:node("b")
            local a = net:node("a")
            a.cfg.persistent_peers = { b:addr() }
            b:start()
            a:start()
            a:wait_connected({ b })
            b:wait_connected({ a })
            H.sleep(1.5) -- a few heartbeats: nothing else may be logged about the peer
            assert.are.equal(1, a:count(CONNECTED .. b.ip))
            assert.are.equal(1, b:count(CONNECTED .. a.ip))
            assert.are.equal(0, a:count("lost"))
            assert.are.equal(0, b:count("lost"))
            local row = a:peer_row(b)
            assert.are.equal("out", row.dir)
            assert.are.equal("b", row.name)
            assert.is_true(row.pongs >= 1)
        end)
    end)

    it("three nodes form a mesh with one session and one \u{2713} line per pair", function()
        H.with_net(function(net)
            local n = {}
            for i = 1, 3 do n[i] = net:node("m" .. i) end
            -- everyone lists everyone: both ends of each pair dial
            for i = 1, 3 do
                local peers = {}
                for j = 1, 3 do if j ~= i then peers[#peers + 1] = n[j]:addr() end end
                n[i].cfg.persistent_peers = peers
            end
            for i = 1, 3 do n[i]:start() end
            for i = 1, 3 do
                local others = {}
                for j = 1, 3 do if j ~= i then others[#others + 1] = n[j] end end
                n[i]:wait_connected(others, 15)
            end
            H.sleep(1.5)
            for i = 1, 3 do
                assert.are.equal(2, #n[i]:peers(), n[i].name .. " active sessions")
                assert.are.equal(2, n[i]:status().peers.connected)
                for j = 1, 3 do
                    if j ~= i then
                        assert.are.equal(1, n[i]:count(CONNECTED .. n[j].ip),
                            n[i].name .. " logs for " .. n[j].name)
                    end
                end
                assert.are.equal(0, n[i]:count("lost"))
            end
        end)
    end)

    it("logs a loss once and Reconnected once when the peer returns, following the backoff", function()
        H.with_net(function(net)
            local b = net:node("b")
            local a = net:node("a", { reconnect_delay = 0.2 })
            a.cfg.persistent_peers = { b:addr() }
            b:start()
            a:start()
            a:wait_connected({ b })
            b:kill()
            a:wait_log("Connection to " .. b.ip .. " lost", 5)
            -- backoff 0.2 -> 0.4 -> 1.2 s: wait for the third failed redial before restarting
            a:wait_log("retry 3 in 1.2 s", 10)
            b:start()
            a:wait_log("Reconnected to " .. b.ip, 10)
            H.sleep(1.5)
            assert.are.equal(1, a:count("Connection to " .. b.ip .. " lost"))
            assert.are.equal(1, a:count("Reconnected to " .. b.ip))
            assert.are.equal(1, a:count(CONNECTED .. b.ip))
            assert.are.equal(1, a:count("retry 2 in 0.4 s"))
            assert.are.equal(1, a:count("retry 3 in 1.2 s"))
            assert.is_truthy(a:peer_row(b))
        end)
    end)

    it("settles 20 forced simultaneous dials on exactly one session each time", function()
        H.with_net(function(net)
            -- both dials wait 0.3 s after TCP connect, so each node accepts the other's
            -- connection while its own is still in flight
            local a = net:node("a", { test_handshake_delay = 0.3, log_fold_window = 1 })
            local b = net:node("b", { test_handshake_delay = 0.3, log_fold_window = 1 })
            a:start()
            b:start()
            local rounds = 20
            for round = 1, rounds do
                local ra = a:ctl({ cmd = "connect", addr = b:addr() })
                local rb = b:ctl({ cmd = "connect", addr = a:addr() })
                assert.is_true(ra.ok, "round " .. round .. ": " .. tostring(ra.error))
                assert.is_true(rb.ok, "round " .. round .. ": " .. tostring(rb.error))
                H.wait(function()
                    local pa, pb = a:peers(true), b:peers(true)
                    return #pa == 1 and #pb == 1 and pa[1].hello and pb[1].hello
                end, 10, "one established session on each side (round " .. round .. ")")
                local pa, pb = a:peers(true)[1], b:peers(true)[1]
                -- the same TCP connection seen from both ends
                assert.are.equal(pa["local"], pb.addr, "round " .. round)
                assert.are.equal(pa.addr, pb["local"], "round " .. round)
                assert.are_not.equal(pa.dir, pb.dir)
                assert.is_truthy(a:ctl({ cmd = "disconnect", addr = b.ip }).ok)
                H.wait(function() return #a:peers(true) == 0 and #b:peers(true) == 0 end, 10,
                    "both sides to drop the session (round " .. round .. ")")
            end
            H.sleep(2.5) -- let folded repeats be summarised
            -- every round: exactly one connect event per side, none from the loser
            local function connects(n, o)
                return n:count(CONNECTED .. o.ip) + n:count("Reconnected to " .. o.ip)
            end
            assert.are.equal(rounds, connects(a, b))
            assert.are.equal(rounds, connects(b, a))
            assert.are.equal(rounds, a:count("Disconnected from " .. b.ip))
            assert.are.equal(rounds, b:count("Connection to " .. a.ip .. " lost"))
            assert.are.equal(0, a:count("Connection to " .. b.ip .. " lost"))
            -- the dials really crossed: each side settled a duplicate in every round
            for _, n in ipairs({ a, b }) do
                local d = n:metric('tn_sessions_duplicate_total{outcome="refused"}')
                    + n:metric('tn_sessions_duplicate_total{outcome="replaced"}')
                assert.are.equal(rounds, d, n.name .. " duplicates settled")
            end
        end)
    end)

    it("refuses a self-dial and never retries it", function()
        H.with_net(function(net)
            local a = net:node("a")
            a:start()
            local r = a:ctl({ cmd = "connect", addr = a:addr() })
            assert.is_true(r.ok)
            a:wait_log("Self-connection detected", 5)
            local again = a:ctl({ cmd = "connect", addr = a:addr() })
            assert.is_false(again.ok)
            assert.are.equal("address is this node", again.error)
            H.sleep(1)
            assert.are.equal(1, a:count("Self-connection detected"))
            assert.are.equal(1, a:metric("tn_dials_total"))
            assert.are.equal(0, #a:peers(true))
        end)
    end)

    it("does not redial its own address listed as a persistent peer", function()
        H.with_net(function(net)
            local a = net:node("a", { reconnect_delay = 0.05 })
            a.cfg.persistent_peers = { a.cfg.listen }
            a:start()
            a:wait_log("Self-connection detected", 5)
            H.sleep(1.5)
            assert.are.equal(1, a:count("Self-connection detected"))
            assert.are.equal(1, a:metric("tn_dials_total"))
        end)
    end)

    it("refuses a second session from the same node identity while the first is healthy", function()
        H.with_net(function(net)
            local a = net:node("a")
            local b = net:node("b")
            local twin = net:node("twin")
            a:start()
            b.cfg.persistent_peers = { a:addr() }
            b:start()
            a:wait_connected({ b })
            -- twin runs with b's key from another IP
            os.execute(string.format("mkdir -p %s && cp %s/node.key %s/node.key",
                twin.cfg.data_dir, b.cfg.data_dir, twin.cfg.data_dir))
            twin.cfg.persistent_peers = { a:addr() }
            twin:start()
            assert.are.equal(b:id(), twin:id())
            H.wait(function() return a:metric('tn_sessions_duplicate_total{outcome="refused"}') >= 2 end,
                10, "a to refuse the twin twice")
            local rows = a:peers()
            assert.are.equal(1, #rows)
            assert.are.equal(b.ip, rows[1].addr:match("^(.-):%d+$"))
            assert.are.equal(1, a:count(CONNECTED .. b.ip))
            assert.are.equal(0, a:count("lost"))
        end)
    end)

    it("shuts down gracefully on SIGTERM and keeps the peer in its store", function()
        H.with_net(function(net)
            local a = net:node("a")
            local b = net:node("b")
            b:start()
            a.cfg.persistent_peers = { b:addr() }
            a:start()
            a:wait_connected({ b })
            assert.are.equal(0, a:stop())
            a:wait_log("Stopped", 2)
            b:wait_log("Connection to " .. a.ip .. " lost", 5)
            local rows = H.sh(string.format("sqlite3 %s/store.db 'select addr, successes from peers'",
                a.cfg.data_dir))
            assert.is_truthy(rows:find(b:addr() .. "|1", 1, true), rows)
        end)
    end)

    it("refuses a second instance on the same data dir", function()
        H.with_net(function(net)
            local a = net:node("a")
            a:start()
            local twin = net:node("a2")
            twin.cfg.data_dir = a.cfg.data_dir
            twin:start({ wait = false })
            H.wait(function() return twin.exit_code ~= nil end, 5, "second instance to exit")
            assert.are_not.equal(0, twin.exit_code)
            assert.is_truthy(twin:log():find("in use by another timenetd", 1, true))
            assert.is_truthy(a:ctl("status").ok)
        end)
    end)

    it("connects over IPv6 loopback", function()
        H.with_net(function(net)
            local b = net:node("b6", { ip = "::1" })
            b.cfg.listen = string.format("[::1]:%d", H.free_port("::1"))
            local a = net:node("a6", { ip = "::1" })
            a.cfg.listen = string.format("[::1]:%d", H.free_port("::1"))
            a.cfg.persistent_peers = { b:addr() }
            b:start()
            a:start()
            a:wait_connected({ b })
            assert.are.equal(1, a:count(CONNECTED .. "::1"))
            assert.is_truthy(a:peer_row(b).addr:find("^%[::1%]:"))
        end)
    end)

    it("refuses to start on a corrupted store and says why", function()
        H.with_net(function(net)
            local a = net:node("a")
            a:start()
            a:stop()
            local f = assert(io.open(a.cfg.data_dir .. "/store.db", "r+b"))
            f:seek("set", 100)
            f:write(string.rep("\255", 4000))
            f:close()
            os.remove(a.cfg.data_dir .. "/store.db-wal")
            a:start({ wait = false })
            H.wait(function() return a.exit_code ~= nil end, 5, "exit")
            assert.are_not.equal(0, a.exit_code)
            assert.is_truthy(a:log():find("Cannot start: .*store%.db"), a:log())
        end)
    end)
end)
