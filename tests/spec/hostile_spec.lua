-- Hostile input (the security issue's list): each case attacks a real node while an honest
-- real peer keeps its session. After every case: the node is alive, the honest session is
-- the same one and its pongs still rise, and the node logged exactly the verdict lines the
-- case expects (one per event) and no other warning. Attackers use 127.X.Y.100+ sources
-- (tests/lib/advpeer.lua); tampering between two real nodes goes through tests/lib/proxy.lua.
local K = require("hostilekit")
local H = K.H
local A = K.A
local Proxy = require("proxy")
local T = A.T

local MAX_FRAME = 65536
local EXPERIMENT = T.MSG_EXPERIMENT_FIRST + 1 -- 0x8001
local UNKNOWN_CORE = 0x7fff

-- The case runner, attacker helpers and checks after each case (honest session intact, one
-- line per verdict, no other warning, RSS within budget) are the hostile kit's. These
-- cases run with the harness's lifted attempt limits: several reconnect from one IP.
local closes_within, alive, strikes_of = K.closes_within, K.alive, K.strikes_of
local warnings_since = K.warnings_since

local function hostile(name, cfg, body)
    local c = { max_frame_size = MAX_FRAME, connection_attempts_free = 1000000,
        connection_attempts_max = 1000000 }
    for k, v in pairs(cfg) do c[k] = v end
    it(K.case(name, c, body))
end

-- Proxy between a second real node p (dialing) and the target: returns px, p.
local function proxied(ctx, pcfg)
    local p = ctx.net:node("p", pcfg or { heartbeat_interval = 1 })
    p:start()
    local px = Proxy.start({ listen = ctx.net.block .. ".50", target = ctx.t:addr(),
        src = ctx.net.block .. ".51" })
    ctx.cleanups[#ctx.cleanups + 1] = function() px:stop() end
    assert.is_true(p:ctl({ cmd = "connect", addr = px.addr }).ok)
    assert(px:wait("accepted", 5))
    ctx.t:wait_connected({ p })
    -- a few frames each way: heartbeats flow through the proxy
    H.wait(function()
        local s = px:stats()
        return s.c2s >= 3 and s.s2c >= 3
    end, 5, "frames through the proxy")
    return px, p
end

describe("hostile input", function()
    hostile("wrong network magic: closed at once, one line; three from one IP make 3 strikes", {},
        function(c)
            local p = c:adv(1, { magic = "XXXX" })
            assert(p:send_flight())
            closes_within(p, 1)
            c:expect("Wrong network magic from " .. c:adv_ip(1) .. ": magic 58 58 58 58", 1)
            for _ = 1, 3 do
                local q = c:adv(2, { magic = "\0\0\0\0" })
                assert(q:send_flight())
                closes_within(q, 1)
            end
            c:expect("Wrong network magic from " .. c:adv_ip(2) .. ": magic 00 00 00 00", 3)
            assert.are.equal(3, strikes_of(c.t, c:adv_ip(2)).magic)
            assert.are.equal(1, strikes_of(c.t, c:adv_ip(1)).magic)
            -- the bans policy's verdict on the third (seed §12): one line; then the IP is
            -- refused at accept, before the node does any work or sends a byte: reset, maybe
            -- before connect() returned
            c:expect("Banned " .. c:adv_ip(2) .. " for ")
            assert.are.equal(1, c.t:count("(magic x3)"))
            local r, err = A.connect(c.t.ip, c.port, { src = c:adv_ip(2) })
            if r then
                c.cleanups[#c.cleanups + 1] = function() r:close() end
                closes_within(r, 1)
                assert.are.equal(0, r.drained)
            else
                assert.are.equal("closed", err)
            end
            assert.are.equal(1, c.t:metric('tn_inbound_refused_total{reason="banned"}'))
        end)

    hostile("incompatible protocol version: closed, one line", {}, function(c)
        local p = c:adv(1, { version = 9, min_version = 9 })
        assert(p:send_flight())
        closes_within(p, 1)
        c:expect("Incompatible protocol version from " .. c:adv_ip(1)
            .. ": theirs 9 (min 9), ours 1 (min 1)")
        local q = c:adv(2, { version = 0, min_version = 0 })
        assert(q:send_flight())
        closes_within(q, 1)
        c:expect("Incompatible protocol version from " .. c:adv_ip(2) .. ": theirs 0 (min 0)")
        assert.are.equal(1, strikes_of(c.t, c:adv_ip(1)).version)
    end)

    hostile("frame headers of length 0, max+1 and 0xFFFFFFFF close at once", {}, function(c)
        local cases = {
            { 0, "frame length 0 invalid here" },
            { MAX_FRAME + 1, "frame length 65537 above maximum" },
            { 0xFFFFFFFF, "frame length 4294967295 above maximum" },
        }
        for i, k in ipairs(cases) do
            local p = c:session(i)
            assert(p:send_header(k[1]))
            closes_within(p, 1) -- not after waiting for the 4 GiB
            c:expect("Invalid frame from " .. c:adv_ip(i) .. ": " .. k[2])
        end
    end)

    hostile("a frame of exactly max_frame_size is accepted", {}, function(c)
        local p = c:session(1)
        local payload = string.rep("m", MAX_FRAME - T.TAG_LEN - T.MSG_HDR_LEN)
        local before = c.t:metric('tn_messages_ignored_total{range="experiment"}')
        assert(p:send_frame(T.msg(EXPERIMENT, payload)))
        alive(p)
        assert.are.equal(before + 1, c.t:metric('tn_messages_ignored_total{range="experiment"}'))
        c:hangup(p, 1)
    end)

    hostile("garbage after the handshake: one Invalid frame line each", {}, function(c)
        -- a plausible length with junk bytes: fails authentication as the next frame due
        local p = c:session(1)
        local junk = {}
        for i = 1, 200 do junk[i] = string.char((i * 73 + 11) % 256) end
        local due = p.tx:counter()
        assert(p:send_raw(A.u32(200) .. table.concat(junk)))
        closes_within(p, 1)
        c:expect(string.format("Invalid frame from %s: frame %d failed authentication",
            c:adv_ip(1), due))
        -- bytes that are not a frame at all
        local q = c:session(2)
        assert(q:send_raw(("\222\173\190\239"):rep(16)))
        closes_within(q, 1)
        c:expect("Invalid frame from " .. c:adv_ip(2) .. ": frame length 3735928559 above maximum")
    end)

    hostile("a frame sealed again with an old counter (replay by the peer) is refused", {},
        function(c)
            local p = c:session(1)
            alive(p)
            local due = p.tx:counter(1) -- sealed as frame 1 (the hello's number) again
            assert(p:send_frame(T.u64(T.MSG_PING, 7)))
            closes_within(p, 1)
            c:expect(string.format("Invalid frame from %s: frame %d failed authentication",
                c:adv_ip(1), due))
        end)

    hostile("a forged auth signature fails the handshake", {}, function(c)
        local p = c:adv(1)
        assert(p:send_flight())
        assert(p:read_flight())
        assert(p:recv_frame()) -- their auth
        local auth = p.hs:auth(p.sk)
        auth = auth:sub(1, 40) .. string.char(auth:byte(41) ~ 1) .. auth:sub(42)
        assert(p:send_frame(T.msg(T.MSG_AUTH, auth)))
        closes_within(p, 1)
        c:expect("Handshake failed from " .. c:adv_ip(1) .. ": auth signature does not verify")
    end)

    -- t counts a session as live when bytes came within its heartbeat interval; h pings every
    -- second, so a 2 s interval on t keeps that check away from its boundary
    hostile("the honest peer's stolen key cannot replace its live session",
        { heartbeat_interval = 2 }, function(c)
        local p = c:adv(1, { key_file = c.h.cfg.data_dir .. "/node.key" })
        assert.are.equal(c.t:id(), p:handshake())
        assert.are.equal(c.h:id(), p.id)
        closes_within(p, 1) -- refused as a duplicate: the live session answers its pings
        assert.are.equal(1, c.t:metric('tn_sessions_duplicate_total{outcome="refused"}'))
        assert.are.equal(0, c.t:metric('tn_sessions_duplicate_total{outcome="replaced"}'))
    end)

    hostile("proxy: a flipped bit closes the session with one line", {}, function(c)
        local px, p = proxied(c)
        assert(px:flip("c2s"))
        local dir, idx = px:wait("flipped", 5)
        assert.are.equal("c2s", dir)
        c:expect(string.format("Invalid frame from %s.51: frame %s failed authentication",
            c.net.block, idx))
        assert(px:wait("closed", 5))
        assert.is_true(p:running())
    end)

    hostile("proxy: a replayed frame closes the session with one line", {}, function(c)
        local px = proxied(c)
        assert(px:replay("c2s"))
        assert(px:wait("replayed", 5))
        c:expect("Invalid frame from " .. c.net.block .. ".51: frame ")
        assert.are.equal(1, c.t:count("failed authentication (tampered, replayed, reordered)"))
        assert(px:wait("closed", 5))
    end)

    hostile("proxy: two reordered frames close the session with one line", {}, function(c)
        local px = proxied(c)
        assert(px:swap("c2s"))
        local dir, a, b = px:wait("swapped", 5)
        assert.are.equal("c2s", dir)
        assert.are.equal(tonumber(a) + 1, tonumber(b))
        -- b arrives where a was due
        c:expect(string.format("Invalid frame from %s.51: frame %s failed authentication",
            c.net.block, a))
        assert(px:wait("closed", 5))
    end)

    hostile("proxy: a truncated frame then silence is closed by the missed pongs", {},
        function(c)
            -- p's own missed-pong close would come much later: only t's verdict is tested
            local px = proxied(c, { heartbeat_interval = 5 })
            assert(px:truncate("c2s", nil, "silence"))
            assert(px:wait("truncated", 5))
            local t0 = H.now()
            c:expect("Connection to " .. c.net.block .. ".51 lost (no pong to 3 pings in a row)")
            local dt = H.now() - t0
            assert.is_true(dt > 1.5 and dt < 6, string.format("closed after %.1f s", dt))
        end)

    hostile("proxy: a truncated frame then close is one loss line", {}, function(c)
        local px = proxied(c)
        assert(px:truncate("c2s", 10, "close"))
        assert(px:wait("truncated", 5))
        c:expect("Connection to " .. c.net.block .. ".51 lost (connection closed mid-frame)")
    end)

    hostile("a silent peer is closed by handshake_timeout with one line", { handshake_timeout = 1 },
        function(c)
            local p = c:adv(1) -- connects and never sends its flight
            local t0 = H.now()
            assert.is_true(p:closed(4))
            local dt = H.now() - t0
            assert.is_true(dt > 0.8 and dt < 2.5, string.format("closed after %.2f s", dt))
            c:expect("Handshake failed from " .. c:adv_ip(1) .. ": handshake not completed in time")
            -- sends its flight, never its auth
            local q = c:adv(2)
            assert(q:send_flight())
            assert(q:read_flight())
            assert.is_true(q:closed(4))
            c:expect("Handshake failed from " .. c:adv_ip(2) .. ": handshake not completed in time")
        end)

    hostile("a message before hello, or a malformed hello: one strike line, closed", {},
        function(c)
            local p = c:adv(1)
            assert(p:handshake())
            assert(p:send_frame(T.u64(T.MSG_PING, 1)))
            closes_within(p, 1)
            c:expect("Invalid message from " .. c:adv_ip(1) .. ": message before hello (strike 1)")
            local q = c:adv(2)
            assert(q:handshake())
            assert(q:send_frame(T.msg(T.MSG_HELLO, "short")))
            closes_within(q, 1)
            c:expect("Invalid message from " .. c:adv_ip(2) .. ": malformed hello (strike 1)")
        end)

    hostile("unknown core-range types are strikes; the third (strike_limit) closes the session",
        {}, function(c)
            local p = c:session(1)
            local text = string.format("Invalid message from %s: unknown message type 0x%04x",
                c:adv_ip(1), UNKNOWN_CORE)
            for i = 1, 2 do
                assert(p:send_frame(T.msg(UNKNOWN_CORE, "x")))
                c.t:wait_log(text .. " (strike " .. i .. ")", 5)
                alive(p) -- still open below strike_limit
            end
            assert(p:send_frame(T.msg(UNKNOWN_CORE, "x")))
            closes_within(p, 1)
            c:expect(text, 3)
            -- the verdict: one ban line; the session it closes adds no line of its own
            c:expect("Banned " .. c:adv_ip(1) .. " for ")
            assert.are.equal(1, c.t:count("(message x3)"))
            assert.are.equal(3, strikes_of(c.t, c:adv_ip(1)).message)
        end)

    -- rate_custom off: the per-peer limit of this class is flood_spec.lua's subject
    hostile("experiment-range types are ignored and counted; the session stays",
        { rate_custom = { 0, 0 } }, function(c)
        local p = c:session(1)
        local metric = 'tn_messages_ignored_total{range="experiment"}'
        local before = c.t:metric(metric)
        assert(p:send_msgs({ { EXPERIMENT, "a" }, { EXPERIMENT, "" }, { 0xffff, "zz" } }))
        alive(p)
        assert.are.equal(before + 3, c.t:metric(metric))
        -- a flood of them, batched: every one counted, none a strike
        assert.are.equal(20000, p:flood(20000, { type = EXPERIMENT, per_frame = 500 }))
        alive(p)
        assert.are.equal(before + 20003, c.t:metric(metric))
        assert.are.equal(0, c.t:count("Invalid message"))
        c:hangup(p, 1)
    end)

    hostile("a duplicate hello is one strike; the session stays", {}, function(c)
        local p = c:session(1)
        assert(p:hello({ name = "again" }))
        c:expect("Invalid message from " .. c:adv_ip(1) .. ": duplicate hello (strike 1)")
        alive(p)
        assert.are.equal(1, strikes_of(c.t, c:adv_ip(1)).message)
        c:hangup(p, 1)
    end)

    hostile("a handshake and frames split into 1-byte writes are accepted", {}, function(c)
        local p = c:adv(1, { split = 1, split_delay = 0.001 })
        assert.are.equal(c.t:id(), p:handshake())
        assert(p:hello({ name = "slow" }))
        assert(p:wait_msg(T.MSG_HELLO, 5))
        alive(p)
        c.t:wait_log("\u{2713} Connected to peer: " .. c:adv_ip(1), 5)
        local found
        for _, row in ipairs(c.t:peers()) do
            if row.id == p.id then found = row end
        end
        assert.is_truthy(found, "session listed")
        assert.are.equal("slow", found.name)
        assert.are.equal(0, warnings_since(c.t, c.log_start))
        c:hangup(p, 1)
    end)
end)
