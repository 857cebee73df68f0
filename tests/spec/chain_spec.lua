-- Transaction relay and hostile blocks between real nodes (issue 5, "Tests that must exist"):
-- a transaction submitted at one node of a 3- and a 10-node network is accepted exactly once
-- by every node and its body reaches each node once (so no peer forwards it twice); forged,
-- misattributed, oversize and miscommitted blocks, a forged transaction and an equivocation
-- from an adversarial peer are dropped, never reach an honest node behind the target, and
-- each costs the sender one strike with one "Invalid message" line.
local H = require("harness")
local A = require("advpeer")
local K = require("chainkit")
local T = A.T

local RECEIVED = 'tn_relay_tx_total{outcome="received"}'
local ACCEPTED = 'tn_relay_tx_total{outcome="accepted"}'
local DUPLICATE = 'tn_relay_tx_total{outcome="duplicate"}'

-- Declares n relay nodes (no masternodes: nothing leaves the mempools) wired by `dials`
-- (dials[i] = list of earlier node indexes node i dials), starts them and waits until
-- each configured link is established at both ends.
local function relay_net(net, n, dials)
    local nodes = {}
    for i = 1, n do nodes[i] = K.node(net, "r" .. i, { min_peers = 0 }) end
    for i = 1, n do
        local peers = {}
        for _, j in ipairs(dials[i] or {}) do peers[#peers + 1] = nodes[j]:addr() end
        nodes[i].cfg.persistent_peers = peers
    end
    K.start_all(nodes)
    for i = 1, n do
        for _, j in ipairs(dials[i] or {}) do
            nodes[i]:wait_connected({ nodes[j] }, 15)
            nodes[j]:wait_connected({ nodes[i] }, 15)
        end
    end
    return nodes
end

-- Submits one transaction at each node listed in `at`, waits until every node holds all of
-- them, then checks the relay counters of every node: each transaction accepted exactly
-- once, its body received at most once (exactly once unless submitted there) and never a
-- duplicate body.
local function relay_once(nodes, at)
    local key = K.keys(1)[1]
    local ids, submitted = {}, {}
    for k, i in ipairs(at) do
        local raw = K.tx(key, k, string.rep("p", 150))
        ids[k] = K.submit(nodes[i], raw)
        submitted[i] = (submitted[i] or 0) + 1
    end
    local t0 = H.now()
    H.wait(function()
        for _, node in ipairs(nodes) do
            local pool = K.mempool(node)
            for _, id in ipairs(ids) do if not pool[id] then return false end end
        end
        return true
    end, 15, "every transaction in every mempool")
    local spread = H.now() - t0
    H.sleep(1.5) -- a relay_request_timeout and more: late copies would have arrived by now
    for i, node in ipairs(nodes) do
        local name = node.name
        assert.are.equal(#ids, node:metric(ACCEPTED), name .. " accepted each tx once")
        assert.are.equal(#ids - (submitted[i] or 0), node:metric(RECEIVED),
            name .. " received each tx body once")
        assert.are.equal(0, node:metric(DUPLICATE), name .. " received a duplicate body")
        assert.are.equal(#ids, node:ctl("mempool").txs, name .. " mempool size")
    end
    return spread
end

describe("transaction relay", function()
    it("3 nodes: a tx is accepted once by every node, each body received once", function()
        H.with_net(function(net)
            local nodes = relay_net(net, 3, { {}, { 1 }, { 1, 2 } })
            relay_once(nodes, { 1, 2, 3, 1 })
        end)
    end)

    it("10 nodes: a tx is accepted once by every node, each body received once", function()
        H.with_net(function(net)
            -- a ring with chords: every node has 2-4 configured links, so most nodes hear of
            -- each transaction from several peers and must fetch it from only one
            local dials = {}
            for i = 1, 10 do
                dials[i] = {}
                if i > 1 then dials[i][#dials[i] + 1] = i - 1 end
                if i > 3 then dials[i][#dials[i] + 1] = i - 3 end
                if i == 10 then dials[i][#dials[i] + 1] = 1 end
            end
            local nodes = relay_net(net, 10, dials)
            local spread = relay_once(nodes, { 1, 4, 7, 10, 5 })
            io.stderr:write(string.format("\n[chain_spec] 10 nodes: 5 txs in every mempool after %.0f ms\n",
                spread * 1000))
        end)
    end)
end)

-- Strike row of an IP on node t.
local function strikes_of(t, ip)
    for _, row in ipairs(t:ctl("strikes").strikes) do
        if row.ip == ip then return row end
    end
    return {}
end

describe("hostile blocks and transactions", function()
    it("are dropped, not relayed, and counted against the sender once each", function()
        H.with_net(function(net)
            local keys = K.keys(2) -- the schedule alternates: even slots keys[1], odd keys[2]
            -- the target: not a masternode itself, nobody produces; strikes never ban here
            local t = K.node(net, "t", { masternodes = K.ids(keys), strike_limit = 100,
                max_block_size = 4096, min_peers = 0 })
            local h = K.node(net, "h", { masternodes = K.ids(keys), min_peers = 0 })
            h.cfg.persistent_peers = { t:addr() }
            t:start()
            h:start()
            t:wait_connected({ h })
            local port = tonumber(t:addr():match(":(%d+)$"))
            local adv_ip = net.block .. ".100"

            -- the adversary holds the masternode key of the slot it forges for
            local slot_ms = K.slot_ms(t)
            local slot = K.now_ms() // slot_ms + 1
            local me, other = keys[slot % 2 + 1], keys[(slot + 1) % 2 + 1]
            local p = assert(A.connect(t.ip, port, { src = adv_ip, key = me.sk }))
            assert(p:handshake())
            assert(p:hello({ name = "adv" }))
            assert(p:wait_msg(T.MSG_HELLO, 5))
            local c = K.chain(t)
            local genesis = T.unhex(c.genesis)
            local time_ms = slot * slot_ms + 1

            local lines = 0
            local function expect_invalid(what)
                lines = lines + 1
                t:wait_log("Invalid message from " .. adv_ip .. ": " .. what, 5)
                t:wait_log("Invalid message from " .. adv_ip, 5, lines)
            end
            local function send_block(raw) assert(p:send_msgs({ { T.MSG_BLOCK, raw } })) end
            local function flip(s, pos)
                return s:sub(1, pos - 1) .. string.char(s:byte(pos) ~ 1) .. s:sub(pos + 1)
            end

            -- forged signature: the scheduled producer's block with one signature bit flipped
            local good = T.block(me.sk, 1, genesis, slot, time_ms, {})
            send_block(flip(good, 126 + 10))
            expect_invalid("block: bad producer signature")
            -- wrong producer: validly signed by the masternode of the other slots
            send_block((T.block(other.sk, 1, genesis, slot, time_ms, {})))
            expect_invalid("block: not signed by the masternode scheduled for its slot")
            -- oversize: above the target's max_block_size of 4096 bytes
            local big = K.tx(me, 1, string.rep("b", 5000))
            send_block((T.block(me.sk, 1, genesis, slot, time_ms, { big })))
            expect_invalid("block: oversize")
            -- bad commitment: a transaction's byte changed after the block was signed
            local tx = K.tx(me, 2, "payload")
            local committed = T.block(me.sk, 1, genesis, slot, time_ms, { tx })
            send_block(flip(committed, #committed - 70))
            expect_invalid("block: transaction commitment does not match")
            -- a transaction with a forged signature
            local forged = K.tx(me, 3, "forged")
            assert(p:send_msgs({ { T.MSG_TX, flip(forged, #forged - 5) } }))
            expect_invalid("transaction with a bad signature")
            -- equivocation: a valid block for the slot, then a second one for the same slot
            local x, x_id = T.block(me.sk, 1, genesis, slot, time_ms, {})
            send_block(x)
            H.wait(function() return K.chain(h).tip == T.hex(x_id) end, 5,
                "the valid block relayed to the honest node")
            local y, y_id = T.block(me.sk, 1, genesis, slot, time_ms + 1, {})
            send_block(y)
            expect_invalid("block: equivocation")
            t:wait_log("Equivocation: masternode " .. me.id:sub(1, 16) .. " signed two blocks for slot "
                .. slot, 5)

            H.sleep(1.5) -- anything relayed would have reached h by now
            assert.are.equal(6, strikes_of(t, adv_ip).message, "strikes of the adversary")
            assert.are.equal(6, t:count("Invalid message from " .. adv_ip))
            assert.are.equal(1, t:count("Equivocation: "))
            assert.are.equal(4, t:metric('tn_relay_blocks_total{outcome="invalid"}'))
            assert.are.equal(1, t:metric('tn_relay_blocks_total{outcome="equivocation"}'))
            assert.are.equal(1, t:metric('tn_relay_blocks_total{outcome="accepted"}'))
            -- the evidence is kept: both blocks indexed, one row in the store
            assert.are.equal(3, K.chain(t).blocks_indexed)
            H.wait(function() return #K.store_rows(t, "SELECT slot FROM equivocations") == 1 end, 5,
                "the equivocation row in t's store")
            local row = K.store_rows(t, "SELECT producer, slot, block_a, block_b FROM equivocations")[1]
            assert.are.equal(table.concat({ me.id, tostring(slot), T.hex(x_id), T.hex(y_id) }, "|"), row)
            -- the honest node behind the target saw the valid block and nothing else
            assert.are.equal(1, h:metric('tn_relay_blocks_total{outcome="received"}'))
            assert.are.equal(0, h:metric(RECEIVED))
            assert.are.equal(T.hex(x_id), K.chain(h).tip)
            assert.are.equal(2, K.chain(h).blocks_indexed)
            assert.are.equal(0, h:count("Invalid message"))
            assert.are.equal(0, h:count("Equivocation"))
            -- the adversary's session stays (invalid messages alone are dropped, below the limit)
            assert(p:ping(3))
            p:close()
        end)
    end)
end)
