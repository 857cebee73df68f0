-- Floods and exhaustion (the security issue's hostile list, second half): replayed handshake
-- messages, an inv flood of 1M fake ids, connection floods from one IP and from 200, 1000 idle
-- pre-handshake connections, slowloris, a peer that never reads, control and get_peers
-- floods and the bandwidth caps. Each case runs on tests/lib/hostilekit.lua: an honest real peer on the
-- same node keeps its session and its rising pongs, the node logs exactly one line per
-- verdict, and its RSS stays within its baseline plus the case's budget (the figures are
-- printed; a case's budget is given with it, else hostilekit's 16 MB; x8 under ASan, whose
-- quarantine keeps freed memory).
local K = require("hostilekit")
local H, T = K.H, K.T
local socket = require("socket")

local closes_within, alive, strikes_of = K.closes_within, K.alive, K.strikes_of

-- Source addresses for the many-IP cases: /16s no harness net block uses (those are 1-250).
local function many_ip(block, i) return string.format("127.%d.%d.%d", block, 1 + i // 250, 1 + i % 250) end

describe("floods", function()
    it(K.case("a handshake message replayed from another session fails that handshake", {},
        function(c)
            -- a first session: its first flight and its auth frame, as they went on the wire
            local p = c:adv(1)
            local flight = p.hs:flight()
            assert(p:send_raw(flight))
            assert(p:read_flight())
            assert(p:recv_frame()) -- the node's auth
            local auth = p:auth_frame()
            assert(p:send_raw(auth))
            -- replayed byte for byte on a new connection: the node's fresh ephemeral key makes
            -- new session keys, so the recorded auth frame cannot open
            local q = c:adv(2)
            assert(q:send_raw(flight))
            assert(q:recv_raw(T.FLIGHT_LEN))
            assert(q:send_raw(auth))
            closes_within(q, 1)
            c:expect("Handshake failed from " .. c:adv_ip(2)
                .. ": frame 0 failed authentication (tampered, replayed, reordered) (strike 1)")
            -- the first session is unharmed: it completes with its hello
            assert(p:hello({ name = "first" }))
            assert(p:wait_msg(T.MSG_HELLO, 5))
            alive(p)
            c:hangup(p, 1)
        end))

    -- RSS budget 16 MB: 33 MB of invs go through the node's 64 KiB read buffer and are dropped
    -- message by message; the request table (TN_REQUESTS_MAX) holds the 20000 admitted ids.
    it(K.case("an inv flood of 1M fake ids: over the inventory bucket dropped and reported, the " ..
        "request table bounded, heartbeats and honest relay unaffected", {}, function(c)
        local p = c:session(1)
        local requested0 = c:metric("tn_relay_requested_total")
        local t0 = H.now()
        for m = 1, 1000 do
            local ids = {}
            for i = 1, 1000 do ids[i] = string.pack(">B I8 I8 I8 I8", T.INV_TX, m, i, m * i, 0x5eed) end
            assert(p:send_frame(T.msg(T.MSG_INV, string.pack(">I2", 1000) .. table.concat(ids))))
            if m % 100 == 0 then c:sample() end
        end
        local sent_s = H.now() - t0
        -- every message was handled (dropped or taken) before the ping behind them is answered
        alive(p) -- the heartbeat class has its own bucket: the pong comes through the flood
        local ip = c:adv_ip(1)
        local reports = strikes_of(c.t, ip).flood or 0
        assert.is_true(reports >= 1, "no flood report")
        c:expect("Message flood from " .. ip .. ": inventory messages over 20000 per 4 s: ", reports)
        -- the bucket let through 20000 ids and 5000 a second after that; the rest was dropped
        local requested = c:metric("tn_relay_requested_total") - requested0
        local elapsed = H.now() - t0
        assert.is_true(requested <= 20000 + 5000 * elapsed + 1000,
            string.format("%d ids requested in %.1f s", requested, elapsed))
        assert.are.equal(0, c:metric("tn_relay_requests_dropped_total"))
        io.stderr:write(string.format("inv flood: 1M ids sent in %.2f s, %d requested, %d reports\n",
            sent_s, requested, reports))
        -- an honest transaction still relays h -> t
        local pk, sk = T.keypair()
        local raw, id = T.tx(sk, os.time() + 3600, 1, "honest")
        assert(pk)
        assert.is_true(c.h:ctl({ cmd = "tx_submit", hex = T.hex(raw) }).ok)
        H.wait(function()
            for _, x in ipairs(c.t:ctl({ cmd = "mempool", ids = true }).ids or {}) do
                if x == T.hex(id) then return true end
            end
        end, 5, "the honest transaction at t")
        if reports >= 3 then -- a flood that lasted 3 s: the policy disconnected it
            assert.is_true(p:closed(2))
        else
            c:hangup(p, 1)
        end
    end))

    it(K.case("a connection flood from one IP (120 in about a second): attempts 6-9 refused with a " ..
        "strike, the 10th bans, the rest refused at accept without work", {}, function(c)
        local ip = c:adv_ip(1)
        local t0 = H.now()
        for _ = 1, 120 do
            local s = c:tcp(ip) -- nil when the node reset it before connect() returned
            if s then s:close() end
        end
        local dt = H.now() - t0
        for k = 6, 10 do
            c:expect(string.format("Too many connection attempts from %s: %d attempts in 60 s (strike %d)",
                ip, k, k - 5))
        end
        c:expect("Banned " .. ip .. " for 300 s (connections x5)")
        H.wait(function()
            return c:metric('tn_inbound_refused_total{reason="banned"}') == 110
        end, 5, "110 attempts refused as banned")
        assert.are.equal(5, c:metric('tn_inbound_refused_total{reason="attempts"}'))
        io.stderr:write(string.format("connection flood: 120 connections from one IP in %.2f s\n", dt))
        -- refused without work: not a byte sent, the connection reset at once
        assert.is_true(c:refused_at_once(1))
    end))

    it(K.case("a connection flood from 200 addresses (7 each): each IP's 6th and 7th refused with " ..
        "a strike, no ban, nothing held", {}, function(c)
        for i = 1, 200 do
            for _ = 1, 7 do
                local s = c:tcp(many_ip(254, i)) -- the 6th and 7th are reset, maybe before
                if s then s:close() end          -- connect() returned
            end
            if i % 50 == 0 then c:sample() end
        end
        c:expect("Too many connection attempts from 127.254.", 400)
        assert.are.equal(200, c.t:count(": 6 attempts in 60 s (strike 1)"))
        assert.are.equal(200, c.t:count(": 7 attempts in 60 s (strike 2)"))
        assert.are.equal(400, c:metric('tn_inbound_refused_total{reason="attempts"}'))
        assert.are.equal(0, c.t:count("Banned "))
        H.wait(function() return c.t:status().sessions == 1 end, 5, "only the honest session left")
    end))

    -- RSS budget 16 MB: at most max_inbound_pending (256) sessions in their handshake (peer
    -- slots, max_peers, are raised so that the pending bound is the one that holds).
    it(K.case("1000 idle pre-handshake connections from 1000 IPs: 256 held (max_inbound_pending), " ..
        "744 refused at accept, the 256 closed at handshake_timeout",
        { handshake_timeout = 2, max_peers = 2000 },
        function(c)
            for i = 1, 1000 do -- each connected and silent until the case ends
                assert(c:tcp(many_ip(253, i)))
                if i % 100 == 0 then c:sample() end
            end
            H.wait(function()
                return c:metric('tn_inbound_refused_total{reason="pending"}') == 744
            end, 10, "744 refused for max_inbound_pending")
            c:sample()
            c:expect("Handshake failed from 127.253.", 256, 10)
            assert.are.equal(256, c.t:count(": handshake not completed in time (strike 1)"))
            c:sample()
        end))

    it(K.case("slowloris: a frame trickled a byte a second is closed at frame_timeout; a flight " ..
        "trickled so at handshake_timeout", { frame_timeout = 1.5, handshake_timeout = 2 },
        function(c)
            local p = c:session(1)
            assert(p:send_header(1000))
            local t0, dt = H.now(), nil
            while H.now() - t0 < 8 do
                if not p:send_raw("x") or p:closed(1) then
                    dt = H.now() - t0
                    break
                end
            end
            assert.is_truthy(dt, "still open after 8 s")
            assert.is_true(dt > 1.3 and dt < 3.5, string.format("closed after %.2f s", dt))
            c:expect("Invalid frame from " .. c:adv_ip(1) .. ": frame not completed within 1.5 s (strike 1)")
            -- before the handshake: the flight a byte a second
            local q = c:adv(2)
            local flight = q.hs:flight()
            t0, dt = H.now(), nil
            for i = 1, #flight do
                if not q:send_raw(flight:sub(i, i)) or q:closed(1) then
                    dt = H.now() - t0
                    break
                end
            end
            assert.is_truthy(dt, "the trickled flight was taken")
            assert.is_true(dt > 1.8 and dt < 4, string.format("closed after %.2f s", dt))
            c:expect("Handshake failed from " .. c:adv_ip(2) .. ": handshake not completed in time")
        end))

    it(K.case("a peer that asks and never reads is closed at write_timeout, long before " ..
        "write_buffer_max", { write_timeout = 1, genesis_time = 1765324800000 }, function(c)
        local _, gid = T.genesis(1765324800000)
        local p = c:session(1, { rcvbuf = 4096 })
        local ask = string.pack(">I2", 1000) .. string.rep(string.pack(">B", T.INV_BLOCK) .. gid, 1000)
        local t0 = H.now()
        for _ = 1, 20 do -- 20000 copies of the genesis block: the inventory burst
            assert(p:send_frame(T.msg(T.MSG_GETDATA, ask)))
        end
        c:expect("Connection to " .. c:adv_ip(1) .. " lost (peer is not reading: nothing written for 1 s)")
        local dt = H.now() - t0
        assert.is_true(dt > 0.9 and dt < 4, string.format("closed after %.2f s", dt))
        assert.are.equal(1, c:metric('tn_guard_closed_total{cause="write_timeout"}'))
    end))

    it(K.case("a get_height flood: over the control bucket (100 a minute) dropped, reported once a " ..
        "second, the third report disconnects with no further line", {}, function(c)
        local p = c:session(1)
        local sent, t0 = 0, H.now()
        local ip = c:adv_ip(1)
        while H.now() - t0 < 10 and c.t:count("Message flood from " .. ip) < 3 do
            if not p:send_frame(T.msg(T.MSG_GET_HEIGHT, "")) then break end
            sent = sent + 1
            socket.sleep(0.005)
        end
        local text = "Message flood from " .. ip .. ": control messages over 100 per 60 s: "
        c:expect(text, 3)
        for k = 1, 3 do assert.are.equal(1, c.t:count(string.format("dropped (strike %d)", k))) end
        assert.is_true(p:closed(2), "still open after the third report")
        assert.are.equal(0, c.t:count("Disconnected from " .. ip))
        assert.is_true(c:metric('tn_rate_dropped_total{class="control"}') > 0)
        io.stderr:write(string.format("control flood: %d get_height sent\n", sent))
    end))

    it(K.case("a get_peers flood: 5 a minute reach peer exchange (one answered, the rest " ..
        "ignored there), the rest dropped; the third report disconnects", {}, function(c)
        local p = c:session(1)
        local ip = c:adv_ip(1)
        local answers0 = c:metric("tn_pex_answers_total")
        local ignored0 = c:metric("tn_pex_requests_ignored_total")
        local t0 = H.now()
        while H.now() - t0 < 10 and c.t:count("Message flood from " .. ip) < 3 do
            if not p:send_frame(T.msg(T.MSG_GET_PEERS, "")) then break end
            socket.sleep(0.01)
        end
        c:expect("Message flood from " .. ip .. ": addresses messages over 5 per 60 s: ", 3)
        assert.is_true(p:closed(2), "still open after the third report")
        assert.are.equal(1, c:metric("tn_pex_answers_total") - answers0)
        assert.are.equal(4, c:metric("tn_pex_requests_ignored_total") - ignored0)
    end))

    it(K.case("bandwidth_in: 3 MB from one peer takes its time at 1 MB/s; heartbeats still flow",
        { bandwidth_in = 1000000, rate_custom = { 0, 0 } }, function(c)
            local p = c:session(1)
            local t0 = H.now()
            -- 3 MB of experiment messages (ignored by the node), then a ping behind them
            assert.are.equal(3000, p:flood(3000, { payload = string.rep("b", 1000), per_frame = 50 }))
            alive(p)
            local dt = H.now() - t0
            assert.is_true(dt > 2.2 and dt < 8, string.format("3 MB in %.2f s", dt))
            assert.is_true(c:metric("tn_bandwidth_read_pauses_total") > 0)
            c:hangup(p, 1)
        end))

    it(K.case("bandwidth_out: 1 MB asked of the node leaves at 500 kB/s, in order",
        { bandwidth_out = 500000, genesis_time = 1765324800000 }, function(c)
            local raw, gid = T.genesis(1765324800000)
            local p = c:session(1)
            local per = 500 -- ids per getdata (at most 1000)
            local n = per * math.ceil(1000000 / (#raw + T.MSG_HDR_LEN) / per)
            local ask = T.msg(T.MSG_GETDATA, string.pack(">I2", per)
                .. string.rep(string.pack(">B", T.INV_BLOCK) .. gid, per))
            local t0 = H.now()
            assert(p:send_frame(ask:rep(n // per)))
            local got = 0
            while got < n and H.now() - t0 < 10 do
                local msgs = p:pump(0.2)
                for _, m in ipairs(msgs) do
                    if m.type == T.MSG_BLOCK then
                        assert.are.equal(raw, m.payload)
                        got = got + 1
                    end
                end
            end
            local dt = H.now() - t0
            assert.are.equal(n, got)
            assert.is_true(dt > 1.4 and dt < 6, string.format("1 MB in %.2f s", dt))
            alive(p)
            c:hangup(p, 1)
        end))
end)
