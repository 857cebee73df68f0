-- Heartbeats (seed §22 with DESIGN.md's refinement): late pongs are counted, not fatal;
-- only consecutive missed pongs close a session. A stopped process (SIGSTOP) is the
-- honest way to make a real peer stop answering.
local H = require("harness")

local function pair(net, cfg)
    local b = net:node("b", cfg)
    local a = net:node("a", cfg)
    a.cfg.persistent_peers = { b:addr() }
    b:start()
    a:start()
    a:wait_connected({ b })
    return a, b
end

describe("health checks", function()
    it("counts a late pong without closing the session", function()
        H.with_net(function(net)
            local a, b = pair(net, { heartbeat_interval = 1, pong_deadline = 0.2 })
            local row = a:peer_row(b)
            -- wait until a ping has just been answered, then freeze b across the next one
            H.wait(function() return a:peer_row(b).pongs > row.pongs end, 5, "a pong")
            local before = a:peer_row(b)
            H.sleep(0.6)
            b:signal("sigstop")
            H.sleep(0.8) -- a's next ping lands while b is stopped
            b:signal("sigcont")
            H.wait(function() return a:peer_row(b).late >= 1 end, 5, "a late pong")
            local after = a:peer_row(b)
            assert.are.equal(before.session, after.session)
            assert.is_true(after.pongs > before.pongs)
            assert.are.equal(0, after.missed)
            assert.are.equal(0, a:count("lost"))
        end)
    end)

    it("closes after missed_pongs_close consecutive missed pongs, logging the loss once", function()
        H.with_net(function(net)
            local a, b = pair(net, { heartbeat_interval = 0.3, missed_pongs_close = 3 })
            b:signal("sigstop")
            a:wait_log("Connection to " .. b.ip .. " lost (no pong to 3 pings in a row)", 10)
            b:signal("sigcont")
            a:wait_log("Reconnected to " .. b.ip, 10)
            assert.are.equal(1, a:count("Connection to " .. b.ip .. " lost"))
            assert.are.equal(1, a:count("Reconnected to " .. b.ip))
            assert.is_true(a:metric("tn_pongs_missed_total") >= 3)
        end)
    end)

    it("answers pings at once: loopback round trips are far below one interval", function()
        H.with_net(function(net)
            local a, b = pair(net, { heartbeat_interval = 0.2 })
            H.wait(function() return a:peer_row(b).pongs >= 5 end, 5, "five pongs")
            local row = a:peer_row(b)
            assert.is_true(row.rtt_ms > 0)
            -- generous bound: only catches pongs held back a whole heartbeat interval
            assert.is_true(row.rtt_ms < 100, "rtt " .. row.rtt_ms)
            assert.are.equal(0, row.missed)
        end)
    end)
end)
