-- Block production between real masternodes (issue 5, "Block production"): the guard makes
-- exactly one block per slot and never two at one height when two timers fire in one tick
-- (test_double_timer), when the slot's block already arrived from the network, and when two
-- nodes hold one masternode key (equivocation: logged once per event, kept in the store); a
-- scheduled producer that is offline leaves its slots empty and the next producer goes on.
local H = require("harness")
local A = require("advpeer")
local K = require("chainkit")
local T = A.T

local PRODUCED = "Produced block "

-- Every "Produced block H for slot S" line of a node: list of {height=, slot=}.
local function produced(node)
    local out = {}
    for _, line in ipairs(K.lines(node, PRODUCED)) do
        local h, s = line:match("Produced block (%d+) for slot (%d+)")
        out[#out + 1] = { height = tonumber(h), slot = tonumber(s) }
    end
    return out
end

-- The node produced at most one block per height and per slot.
local function one_per_height_and_slot(node)
    local heights, slots = {}, {}
    for _, p in ipairs(produced(node)) do
        assert.is_nil(heights[p.height], node.name .. " produced twice at height " .. p.height)
        assert.is_nil(slots[p.slot], node.name .. " produced twice for slot " .. p.slot)
        heights[p.height], slots[p.slot] = true, true
    end
end

-- A main chain is well formed for the schedule: heights 1..n, slots strictly rising (one
-- block per slot), each block by the masternode scheduled for its slot.
local function check_schedule(chain, keys)
    local last_slot = 0
    for i, b in ipairs(chain) do
        assert.are.equal(i, b.height)
        assert.is_true(b.slot > last_slot, "slot " .. b.slot .. " after " .. last_slot)
        assert.are.equal(keys[b.slot % #keys + 1].id, b.producer, "producer of slot " .. b.slot)
        last_slot = b.slot
    end
end

describe("block production", function()
    it("two timers in one tick produce exactly one block per slot", function()
        H.with_net(function(net)
            local keys = K.keys(3)
            local nodes = {}
            for i = 1, 3 do
                nodes[i] = K.node(net, "m" .. i, { masternodes = K.ids(keys), test_double_timer = true,
                    min_peers = 0 }, keys[i])
            end
            K.mesh(nodes)
            K.start_all(nodes)
            K.wait_mesh(nodes)
            local c = K.chain(nodes[1])
            K.wait_same_tip(nodes, 15, c.height + 9) -- nine more slots
            for _, node in ipairs(nodes) do
                local mine = produced(node)
                assert.is_true(#mine >= 2, node.name .. " produced " .. #mine)
                -- the second timer of every slot this node produced in was turned away, once
                for _, p in ipairs(mine) do
                    assert.are.equal(1, node:count("Skipped block production for slot " .. p.slot
                        .. ": already produced"), node.name .. " slot " .. p.slot)
                end
                one_per_height_and_slot(node)
                assert.are.equal(0, node:count("Producing the block"))
            end
            -- across the network, after the mesh formed: one block per height
            local by_height = {}
            for _, node in ipairs(nodes) do
                for _, p in ipairs(produced(node)) do
                    if p.height > c.height then
                        assert.is_nil(by_height[p.height], "two blocks at height " .. p.height)
                        by_height[p.height] = node.name
                    end
                end
            end
            check_schedule(K.main_chain(nodes[1]), keys)
        end)
    end)

    it("a block for the slot that arrived first: the producer skips it once", function()
        H.with_net(function(net)
            -- two masternodes; the second is offline, so the first's tip moves only in its
            -- own slots (every other slot)
            local keys = K.keys(2)
            local a = K.node(net, "a", { masternodes = K.ids(keys), min_peers = 0 }, keys[1])
            a:start()
            local slot_ms = K.slot_ms(a)
            -- right after a produced for slot P, its next slot is P + 2, 0.5-1 s away
            local n0 = #produced(a)
            H.wait(function() return #produced(a) > n0 end, 5, "a to produce")
            local p = produced(a)[#produced(a)]
            local c = K.chain(a)
            assert.are.equal(p.height, c.height)
            local target = p.slot + 2
            assert.is_true(K.now_ms() < target * slot_ms - 100, "time left before slot " .. target)
            -- another process holding a's masternode key (its session has an identity of its
            -- own: a refuses its own id as a self-connection) delivers a block for that slot
            local adv = assert(A.connect(a.ip, tonumber(a:addr():match(":(%d+)$")),
                { src = net.block .. ".100" }))
            assert(adv:handshake())
            assert(adv:hello({ name = "twin" }))
            assert(adv:wait_msg(T.MSG_HELLO, 5))
            local raw, id = T.block(keys[1].sk, c.height + 1, T.unhex(c.tip), target,
                target * slot_ms + 1, {})
            assert(adv:send_msgs({ { T.MSG_BLOCK, raw } }))
            H.wait(function() return K.chain(a).tip == T.hex(id) end, 2, "a to take the block")
            a:wait_log("Skipped block production for slot " .. target .. ": the chain has a block for it", 3)
            -- the chain goes on from that block in a's next slot
            H.wait(function() return K.chain(a).height >= c.height + 2 end, 3, "a's next block")
            adv:close()
            assert.are.equal(1, a:count("Skipped block production for slot " .. target))
            assert.are.equal(0, a:count("for slot " .. target .. " with"))
            local chain = K.main_chain(a)
            assert.are.equal(T.hex(id), chain[c.height + 1].id)
            assert.are.equal(chain[c.height + 1].id, chain[c.height + 2].prev)
            check_schedule(chain, keys)
            one_per_height_and_slot(a)
            assert.are.equal(0, a:count("Equivocation"))
        end)
    end)

    it("the scheduled producer offline: its slots stay empty and the next goes on", function()
        H.with_net(function(net)
            local keys = K.keys(3)
            local off = 2 -- keys[2] never starts
            local nodes = {}
            for _, i in ipairs({ 1, 3 }) do
                nodes[#nodes + 1] = K.node(net, "m" .. i, { masternodes = K.ids(keys), min_peers = 0 },
                    keys[i])
            end
            K.mesh(nodes)
            K.start_all(nodes)
            K.wait_mesh(nodes)
            local c0 = K.chain(nodes[1])
            local common = K.wait_same_tip(nodes, 15, c0.height + 6)
            local chain = K.main_chain(nodes[1])
            check_schedule(chain, keys)
            local first = chain[1].slot
            local last = chain[#chain].slot
            local have, empty_of_off = {}, 0
            for _, b in ipairs(chain) do
                have[b.slot] = true
                assert.are_not.equal(keys[off].id, b.producer)
            end
            for s = first, last do
                if s % 3 + 1 == off then
                    assert.is_nil(have[s], "slot " .. s .. " of the offline producer")
                    empty_of_off = empty_of_off + 1
                end
            end
            assert.is_true(empty_of_off >= 2, "offline slots crossed: " .. empty_of_off)
            -- the chain went on across them: a block right after each of them, on the block
            -- right before it
            local crossed = 0
            for i = 2, #chain do
                local gap = chain[i].slot - chain[i - 1].slot
                if gap >= 2 then crossed = crossed + 1 end
            end
            assert.is_true(crossed >= 2, "blocks after an empty slot: " .. crossed)
            for _, node in ipairs(nodes) do
                one_per_height_and_slot(node)
                assert.are.equal(0, node:count("Producing the block"))
            end
            assert.is_true(common.height >= 6)
        end)
    end)

    it("two nodes with one masternode key: each equivocation logged once and stored", function()
        H.with_net(function(net)
            local keys = K.keys(2)
            local ids = K.ids(keys)
            -- a and a2 share keys[1]; b holds keys[2]; o observes. No node has two sessions
            -- with the one identity: a - b - o - a2.
            local cfg = { masternodes = ids, min_peers = 0, strike_limit = 100, block_interval = 0.3 }
            local a = K.node(net, "a", cfg, keys[1])
            local b = K.node(net, "b", cfg, keys[2])
            local o = K.node(net, "o", cfg)
            local a2 = K.node(net, "a2", cfg, keys[1])
            b.cfg.persistent_peers = { a:addr() }
            o.cfg.persistent_peers = { b:addr() }
            a2.cfg.persistent_peers = { o:addr() }
            K.start_all({ a, b, o, a2 })
            b:wait_connected({ a, o })
            o:wait_connected({ b, a2 })
            -- events count from the first slot that starts with the line complete
            local from_slot = K.now_ms() // K.slot_ms(a) + 1
            -- the events: slots of keys[1] for which the network holds two different
            -- blocks (the twins fire in the same millisecond now and then and sign the very
            -- same block: no equivocation)
            local function events()
                local by_slot = {}
                for _, node in ipairs({ a, b, o, a2 }) do
                    for _, row in ipairs(K.store_rows(node, "SELECT slot, id FROM blocks")) do
                        local sl, id = row:match("^(%d+)|(%x+)$")
                        sl = tonumber(sl)
                        if sl and sl % 2 == 0 then
                            by_slot[sl] = by_slot[sl] or {}
                            by_slot[sl][id] = true
                        end
                    end
                end
                local out, n = {}, 0
                for sl, set in pairs(by_slot) do
                    local k = 0
                    for _ in pairs(set) do k = k + 1 end
                    if k >= 2 then
                        out[sl] = true
                        if sl >= from_slot then n = n + 1 end
                    end
                end
                return out, n
            end
            H.wait(function()
                local _, n = events()
                return n >= 2
            end, 30, "two equivocations")
            assert.are.equal(0, a2:stop(), "a2's exit code") -- clean (no leak under asan)
            H.sleep(1.2) -- what is in flight lands
            local twice = events()
            local counted = {} -- the events since the line was complete
            for sl in pairs(twice) do if sl >= from_slot then counted[sl] = true end end
            local detected = {}
            for _, node in ipairs({ a, b, o, a2 }) do
                -- one line per event: only slots both twins produced in, none twice
                local seen = {}
                local lines = K.lines(node, "Equivocation: masternode " .. keys[1].id:sub(1, 16))
                for _, line in ipairs(lines) do
                    local s = tonumber(line:match("for slot (%d+)"))
                    assert.is_nil(seen[s], node.name .. " logged slot " .. s .. " twice")
                    assert.is_true(twice[s], node.name .. " logged slot " .. s)
                    seen[s] = true
                    detected[s] = (detected[s] or 0) + 1
                end
                -- the evidence rows match the lines
                H.wait(function()
                    return #K.store_rows(node, "SELECT slot FROM equivocations") == #lines
                end, 5, node.name .. "'s equivocation rows")
                for _, row in ipairs(K.store_rows(node, "SELECT producer, slot FROM equivocations")) do
                    local p, s = row:match("^(%x+)|(%d+)$")
                    assert.are.equal(keys[1].id, p)
                    assert.is_true(seen[tonumber(s)], "row for slot " .. s)
                end
                one_per_height_and_slot(node)
            end
            -- where the first-seen block changes along a - b - o - a2, both ends see both
            for s in pairs(counted) do
                assert.is_true((detected[s] or 0) >= 2, "slot " .. s .. " detected by " .. (detected[s] or 0))
            end
            -- only a producer that signed both is judged, never an honest relayer
            local function struck_only(node, ip)
                for _, line in ipairs(K.lines(node, "Invalid message from ")) do
                    local want = "Invalid message from " .. tostring(ip) .. ": block: equivocation"
                    assert.is_truthy(line:find(want, 1, true), node.name .. ": " .. line)
                end
            end
            struck_only(a, nil)
            struck_only(a2, nil)
            struck_only(b, a.ip)
            struck_only(o, a2.ip)
            -- with one twin gone the network settles on one chain
            K.wait_same_tip({ a, b, o }, 10)
        end)
    end)
end)
