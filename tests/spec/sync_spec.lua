-- Height and block sync between real nodes (issue 5, "Sync" and "Forks"): a node that was
-- down catches up in order and fails over when its sync peer freezes (stall) or dies (loss)
-- mid-download; a network partitioned in two with producers on both sides converges to one
-- chain after healing, with the losing branch's transactions back in mempools or on the
-- winning chain; kill -9 between the store writes of blocks, 20 times, never corrupts the
-- store and the node still catches up.
local H = require("harness")
local K = require("chainkit")

-- F's sync lines name peers by IP: the node listening there.
local function by_ip(nodes, ip)
    for _, n in ipairs(nodes) do if n.ip == ip then return n end end
    error("no node at " .. tostring(ip))
end

-- Waits for a line containing text to appear in node's log (beyond the first `after`
-- occurrences); returns the line and the time it was seen (polling every 20 ms).
local function next_line(node, text, after, timeout)
    local line
    H.wait(function()
        local l = K.lines(node, text)
        if #l > (after or 0) then
            line = l[(after or 0) + 1]
            return true
        end
    end, timeout or 10, node.name .. " to log " .. text)
    return line, H.now()
end

describe("sync", function()
    it("a node down for N blocks catches up in order, failing over on a stall and a loss", function()
        H.with_net(function(net)
            local keys = K.keys(3)
            -- small frames: at most 10 blocks per reply, each reply 0.4 s late, so the download
            -- takes several round trips that a test can cut
            local cfg = { masternodes = K.ids(keys), block_interval = 0.2, min_peers = 0,
                max_frame_size = 2048, max_block_size = 1024, test_sync_serve_delay = 0.4 }
            local prod = {}
            for i = 1, 3 do prod[i] = K.node(net, "p" .. i, cfg, keys[i]) end
            K.mesh(prod)
            local f = K.node(net, "f", { masternodes = K.ids(keys), block_interval = 0.2,
                min_peers = 0, max_frame_size = 2048, max_block_size = 1024 })
            f.cfg.persistent_peers = { prod[1]:addr(), prod[2]:addr(), prod[3]:addr() }
            K.start_all(prod)
            K.wait_mesh(prod)
            f:start()
            f:wait_connected(prod)
            K.wait_same_tip({ prod[1], f }, 10, 1)
            assert.are.equal(0, f:stop(), "f's exit code") -- a clean shutdown (no leak under asan)
            local down_from = K.chain(prod[1]).height
            H.wait(function() return K.chain(prod[1]).height >= down_from + 40 end, 20,
                "40 blocks while f is down")
            local behind = K.chain(prod[1]).height
            local synced_before = #K.lines(f, "Synced to height ")
            local syncing_before = #K.lines(f, "Syncing from ")
            f:start()
            local line = next_line(f, "Syncing from ", syncing_before)
            local x = by_ip(prod, line:match("Syncing from ([%d.]+):"))
            local start_h = tonumber(line:match("Syncing from [%d.]+: height (%d+)"))
            assert.is_true(start_h <= down_from + 2, line)
            -- the first reply arrived: freeze the sync peer mid-download (it stalls)
            H.wait(function() return K.chain(f).height > start_h end, 5, "f's first blocks")
            x:signal("sigstop")
            local t_stop = H.now()
            local stalled, t_stalled =
                next_line(f, "Sync peer " .. x.ip .. " stalled; continuing from height ")
            local y = by_ip(prod, stalled:match("continuing from height %d+ with ([%d.]+)"))
            assert.are_not.equal(x, y)
            local stall_h = tonumber(stalled:match("continuing from height (%d+)"))
            -- the next peer delivers: kill it mid-download (it is lost)
            H.wait(function() return K.chain(f).height > stall_h end, 5, "blocks from the second peer")
            local t_kill = H.now()
            y:kill()
            local lost, t_lost = next_line(f, "Sync peer " .. y.ip .. " lost; continuing from height ")
            local z = by_ip(prod, lost:match("continuing from height %d+ with ([%d.]+)"))
            assert.are_not.equal(x, z)
            assert.are_not.equal(y, z)
            local synced = next_line(f, "Synced to height ", synced_before, 15)
            assert.is_truthy(synced:find("from " .. z.ip, 1, true), synced)
            -- f follows the one producer left, block for block
            K.wait_same_tip({ z, f }, 10, behind)
            local fc, zc = K.main_chain(f), K.main_chain(z)
            assert.are.equal(#zc, #fc)
            for i = 1, #fc do assert.are.equal(zc[i].id, fc[i].id, "height " .. i) end
            assert.are.equal(1, f:count("Sync peer " .. x.ip .. " stalled"))
            assert.are.equal(1, f:count("Sync peer " .. y.ip .. " lost"))
            assert.are.equal(0, f:count("Invalid message"))
            io.stderr:write(string.format(
                "\n[sync_spec] %d blocks behind; failover after a stall %.0f ms (sync_timeout 1 s, "
                    .. "serve delay 0.4 s), after a loss %.0f ms\n",
                behind - start_h, (t_stalled - t_stop) * 1000, (t_lost - t_kill) * 1000))
            x:signal("sigcont")
        end)
    end)

    it("a partition in two converges to one chain; the losing branch's txs come back", function()
        H.with_net(function(net)
            local keys = K.keys(4)
            local nodes = {}
            for i = 1, 4 do
                nodes[i] = K.node(net, "m" .. i, { masternodes = K.ids(keys), block_interval = 0.3,
                    min_peers = 0, reconnect_delay = 0.2 }, keys[i])
            end
            K.mesh(nodes)
            K.start_all(nodes)
            K.wait_mesh(nodes)
            K.wait_same_tip(nodes, 10, 2)
            local side_a, side_b = { nodes[1], nodes[2] }, { nodes[3], nodes[4] }
            -- both sides refuse the other side's IPs (and drop the sessions they have)
            for _, a in ipairs(side_a) do
                for _, b in ipairs(side_b) do
                    assert.is_true(a:ctl({ cmd = "block", addr = b.ip }).ok)
                    assert.is_true(b:ctl({ cmd = "block", addr = a.ip }).ok)
                end
            end
            H.wait(function()
                for _, a in ipairs(side_a) do
                    for _, b in ipairs(side_b) do
                        if a:peer_row(b) or b:peer_row(a) then return false end
                    end
                end
                return true
            end, 5, "the two sides apart")
            local key = K.keys(1)[1]
            local tx_a = K.submit(nodes[1], (K.tx(key, 1, "side a")))
            local tx_b = K.submit(nodes[3], (K.tx(key, 2, "side b")))
            -- each side's chain grows with its own transaction on it
            local h_split = K.chain(nodes[1]).height
            H.wait(function()
                return K.chain(nodes[1]).height >= h_split + 3 and K.chain(nodes[3]).height >= h_split + 3
            end, 10, "both sides producing")
            local ca, cb = K.wait_same_tip(side_a, 5), K.wait_same_tip(side_b, 5)
            assert.are_not.equal(ca.tip, cb.tip)
            H.wait(function() return K.chain_txs(K.main_chain(nodes[1]))[tx_a] end, 5,
                "tx_a on side a's chain")
            H.wait(function() return K.chain_txs(K.main_chain(nodes[3]))[tx_b] end, 5,
                "tx_b on side b's chain")
            assert.is_nil(K.chain_txs(K.main_chain(nodes[1]))[tx_b])
            assert.is_nil(K.chain_txs(K.main_chain(nodes[3]))[tx_a])
            -- heal: lift the blocks, side a dials side b (each side's tip now: its branch)
            local split_tip = { K.chain(nodes[1]).tip, K.chain(nodes[3]).tip }
            for _, a in ipairs(side_a) do
                for _, b in ipairs(side_b) do
                    assert.is_true(a:ctl({ cmd = "unblock", addr = b.ip }).ok)
                    assert.is_true(b:ctl({ cmd = "unblock", addr = a.ip }).ok)
                end
            end
            for _, a in ipairs(side_a) do
                for _, b in ipairs(side_b) do a:ctl({ cmd = "connect", addr = b:addr() }) end
            end
            K.wait_mesh(nodes, 10)
            local top = math.max(K.chain(nodes[1]).height, K.chain(nodes[3]).height)
            K.wait_same_tip(nodes, 15, top + 1)
            -- the side whose tip is not on the one chain lost; each of its nodes reorganised
            local on_chain = {}
            for _, b in ipairs(K.main_chain(nodes[1])) do on_chain[b.id] = true end
            assert.are_not.equal(on_chain[split_tip[1]] or false, on_chain[split_tip[2]] or false)
            local losers = on_chain[split_tip[1]] and side_b or side_a
            for _, n in ipairs(losers) do
                assert.is_true(n:count("Reorg: depth ") >= 1, n.name .. " logged no reorg")
            end
            -- both transactions, the losing branch's included, are pooled or on the one chain
            -- at every node
            H.wait(function()
                for _, n in ipairs(nodes) do
                    local pool, onchain = K.mempool(n), K.chain_txs(K.main_chain(n))
                    for _, id in ipairs({ tx_a, tx_b }) do
                        if not (pool[id] or onchain[id]) then return false end
                    end
                end
                return true
            end, 10, "both transactions at every node")
            K.wait_same_tip(nodes, 10)
            for _, n in ipairs(nodes) do assert.are.equal(0, n:count("Invalid message")) end
        end)
    end)

    it("kill -9 between block writes, 20 rounds: the store stays sound, the node catches up", function()
        H.with_net(function(net)
            local keys = K.keys(2)
            -- small replies (5 blocks), a little late: the follower writes its blocks in
            -- several store batches, so some commit before the fault kills it mid-batch
            local cfg = { masternodes = K.ids(keys), block_interval = 0.2, min_peers = 0,
                max_frame_size = 1088, max_block_size = 1024, test_sync_serve_delay = 0.1 }
            local p1 = K.node(net, "p1", cfg, keys[1])
            local p2 = K.node(net, "p2", cfg, keys[2])
            K.mesh({ p1, p2 })
            local f = K.node(net, "f", { masternodes = K.ids(keys), block_interval = 0.2,
                min_peers = 0, max_frame_size = 1088, max_block_size = 1024, test_fault = "block_write" })
            f.cfg.persistent_peers = { p1:addr(), p2:addr() }
            K.start_all({ p1, p2 })
            K.wait_mesh({ p1, p2 })
            H.wait(function() return K.chain(p1).height >= 5 end, 10, "a few blocks")
            local last_h, progressed = 0, 0
            for round = 1, 20 do
                f:start({ wait = false })
                H.wait(function() return f.exit_code ~= nil end, 15, "round " .. round .. ": the fault")
                assert.are.equal(9, f.exit_signal, "round " .. round .. ": exit code "
                    .. tostring(f.exit_code) .. ", signal " .. tostring(f.exit_signal))
                -- it had opened the store (integrity check passed) and loaded what was committed
                assert.are.equal(round, f:count("timenetd started: "), "round " .. round)
                local heights = {}
                for _, l in ipairs(K.lines(f, "Chain at height ")) do
                    heights[#heights + 1] = tonumber(l:match("Chain at height (%d+)"))
                end
                assert.is_true(heights[round] >= last_h, "committed blocks lost in round " .. round)
                if heights[round] > last_h then progressed = progressed + 1 end
                last_h = heights[round]
            end
            assert.are.equal(20, f:count("test_fault: this process kills itself during block write "))
            f.cfg.test_fault = ""
            f:start()
            local target = K.chain(p1).height
            K.wait_same_tip({ p1, p2, f }, 15, target)
            local fc, pc = K.main_chain(f), K.main_chain(p1)
            for i = 1, #fc do assert.are.equal(pc[i].id, fc[i].id, "height " .. i) end
            io.stderr:write(string.format("\n[sync_spec] 20 kill -9 rounds (%d with blocks committed "
                .. "before the kill); last height loaded %d; caught up to %d\n", progressed, last_h, #fc))
        end)
    end)
end)
