-- Peer limits and eviction (issue 6, seed §10, §21, §23): with 60 live candidates in 60
-- distinct /16 groups a node keeps 8..50 ordinary peers at every sample; at full slots a
-- newcomer evicts the lowest-scored unprotected peer, never a masternode; an edited
-- eviction rule, reloaded, decides the next eviction; masternodes keep sessions with every
-- masternode in reserved slots beyond max_peers and dial the ones whose address they know.
--
-- TN_SOAK=1 runs the 60-node profile for the full 60 s (`make soak`); `make test` runs 16 s.
local H = require("harness")
local K = require("chainkit")
local httpd = require("httpd")
local json = require("dkjson")

local SOAK = os.getenv("TN_SOAK") == "1"

-- IPs in distinct /16 groups: 127.A.B.C with a different A.B for each i.
local function spread_ip(net, i)
    local b = tonumber(net.block:match("^127%.%d+%.(%d+)$"))
    return string.format("127.%d.%d.%d", 1 + (b + 3 * i) % 250, 1 + (b * 7 + i) % 250, 9 + i % 200)
end

local function start_all(nodes)
    for _, x in ipairs(nodes) do x:start({ wait = false }) end
    for _, x in ipairs(nodes) do
        H.wait(function()
            if x.exit_code then error(x.name .. " exited with " .. x.exit_code) end
            return x:ctl_try({ cmd = "status" })
        end, 30, x.name .. " to answer")
    end
end

local function ordinary(n) return n:metric("tn_peers_ordinary") end

-- The node's established peers: addr -> row.
local function rows(n)
    local t = {}
    for _, p in ipairs(n:peers()) do if p.hello then t[p.addr] = p end end
    return t
end

local function row_of(n, x)
    for _, p in ipairs(n:peers()) do if p.id == x:id() then return p end end
end

-- Connects x to n once (the control verb `connect`) and waits for the outcome.
local function dial(x, n)
    assert.is_true(x:ctl({ cmd = "connect", addr = n:addr() }).ok)
end

describe("peer limits", function()
    -- Phase 1: n finds the 60 through the peer API and dials until it has min_peers (8).
    -- Phase 2: all 60 keep dialing n (addnode): n stays at max_peers (50) by evicting, and
    -- keeps its own 8 outbound choices (eviction.lua protects them: no eclipse by inbound).
    it("60 live candidates in distinct /16 groups: ordinary peers stay within 8..50", function()
        H.with_net(function(net)
            local seconds = SOAK and 60 or 16
            local light = { dedup_capacity = 1000, heartbeat_interval = 1, reconnect_delay = 2,
                reconnect_backoff = { 1, 2, 6 }, policy_tick_interval = 2, log_level = "warn" }
            local api_list, cands = {}, {}
            local n = net:node("n", { min_peers = 8, max_peers = 50, discovery_interval = 0.5,
                dedup_capacity = 1000, heartbeat_interval = 1, policy_tick_interval = 1 })
            for i = 1, 60 do
                local c = { ip = spread_ip(net, i) }
                for k, v in pairs(light) do c[k] = v end
                cands[i] = net:node("c" .. i, c)
                api_list[i] = cands[i]:addr()
            end
            local srv = httpd.start(net.block .. ".243", { ["/peers"] = { body = json.encode(api_list) } })
            n.cfg.peer_api_url = srv.url("/peers")
            start_all(cands)
            n:start()
            local t_start = H.now()
            local samples, lo, hi, first8 = {}, math.huge, 0, nil
            local function sample_for(secs)
                local t0 = H.now()
                while H.now() - t0 < secs do
                    local k = ordinary(n)
                    samples[#samples + 1] = k
                    if k >= 8 and not first8 then first8 = H.now() - t_start end
                    if first8 then lo = math.min(lo, k) end
                    hi = math.max(hi, k)
                    H.sleep(1)
                end
            end
            sample_for(seconds / 2)
            local phase1 = ordinary(n)
            for _, x in ipairs(cands) do
                assert.is_true(x:ctl({ cmd = "addnode", addr = n:addr(), action = "add" }).ok)
            end
            sample_for(seconds / 2)
            local groups, out = {}, 0
            for addr, r in pairs(rows(n)) do
                groups[addr:match("^127%.(%d+%.%d+)%.")] = true
                if r.dir == "out" then out = out + 1 end
            end
            local ng = 0
            for _ in pairs(groups) do ng = ng + 1 end
            local evictions = n:metric('tn_evictions_total{reason="inbound"}')
            local rss = 0
            for _, x in ipairs(cands) do rss = rss + (tonumber(H.sh("ps -o rss= -p " .. x.pid)) or 0) end
            io.stderr:write(string.format("\n[peers_spec] 60 candidates, %d s: reached 8 peers at %.1f s; "
                .. "then ordinary peers min %d max %d (samples %s); %d outbound kept; %d /16 groups "
                .. "among its peers; %d evictions; candidates' RSS %.0f MiB in all\n", seconds,
                first8 or -1, lo, hi, table.concat(samples, " "), out, ng, evictions, rss / 1024))
            assert.is_truthy(first8, "reached min_peers")
            assert.are.equal(8, phase1, "dials up to min_peers, no further")
            assert.is_true(lo >= 8, "fell to " .. lo)
            assert.is_true(hi <= 50, "rose to " .. hi)
            assert.are.equal(50, ordinary(n))
            assert.are.equal(8, out, "its own outbound choices survive the inbound crowd")
            assert.is_true(evictions > 0)
            assert.is_true(n:running())
            srv:close()
        end)
    end)

    -- n (max_peers 10) with ten peers p1..p10; p10 connected last and was frozen for a while,
    -- so its pongs came late: the lowest score, not among the 4 fastest nor the 4 longest
    -- connected. An eleventh peer evicts it.
    it("at full slots a new inbound evicts the lowest-scored unprotected peer", function()
        H.with_net(function(net)
            local n = net:node("n", { max_peers = 10, policy_tick_interval = 0.3 })
            n:start()
            local ps = {}
            for i = 1, 11 do ps[i] = net:node("p" .. i) end
            start_all(ps)
            for i = 1, 10 do
                dial(ps[i], n)
                H.wait(function() return row_of(n, ps[i]) end, 5, "p" .. i .. " connected")
                H.sleep(0.1)
            end
            local low = ps[10]
            low:signal("sigstop")
            H.sleep(1.6)
            low:signal("sigcont")
            H.wait(function() local r = row_of(n, low) return r and r.late > 0 end, 5, "a late pong")
            H.sleep(0.7) -- a policy tick: the scores in the peers verb are current
            local lowest, score_low
            for _, r in pairs(rows(n)) do
                if not lowest or r.score < lowest.score then lowest = r end
                if r.id == low:id() then score_low = r.score end
            end
            assert.are.equal(low:id(), lowest.id, "p10 has the lowest score (" .. score_low .. ")")
            dial(ps[11], n)
            H.wait(function() return row_of(n, ps[11]) end, 5, "p11 connected")
            H.wait(function() return not row_of(n, low) end, 5, "p10 evicted")
            n:wait_log("Evicting " .. low.ip .. " (inbound, score ")
            assert.are.equal(10, ordinary(n))
            for i = 1, 9 do assert.is_truthy(row_of(n, ps[i]), "p" .. i .. " kept") end
            assert.are.equal(1, n:metric('tn_evictions_total{reason="inbound"}'))
        end)
    end)

    -- Masternodes m1, m2 count as ordinary peers here (masternode_slots 0) and the eviction
    -- rule is a bad one that picks a masternode: the core refuses the pick (a bad result:
    -- the C default decides) and an ordinary peer makes room.
    it("never evicts a masternode for an ordinary peer, whatever the policy picks", function()
        H.with_net(function(net)
            local keys = K.keys(2)
            local ids = K.ids(keys)
            local pdir = net.dir .. "/policies"
            os.execute("cp -r policies " .. pdir)
            local body = assert(H.read_file(pdir .. "/eviction.lua"):match("^(.*\n)return M\n$"))
            H.write_file(pdir .. "/eviction.lua", body .. "M.tests = nil\n"
                .. "function M.evict(list)\n"
                .. "    for _, p in ipairs(list) do if p.masternode then return p.addr end end\n"
                .. "end\n\nreturn M\n")
            local chain = { masternodes = ids, block_interval = 3600 }
            local n = net:node("n", { max_peers = 12, masternode_slots = 0, masternodes = ids,
                block_interval = 3600, policy_dir = pdir })
            n:start()
            local ms = { K.node(net, "m1", chain, keys[1]), K.node(net, "m2", chain, keys[2]) }
            local os_ = {}
            for i = 1, 11 do os_[i] = net:node("o" .. i, chain) end
            start_all(ms)
            start_all(os_)
            for _, m in ipairs(ms) do dial(m, n) end
            for i = 1, 10 do dial(os_[i], n) end
            H.wait(function() return ordinary(n) == 12 end, 10, "n full")
            for _, m in ipairs(ms) do assert.is_true(row_of(n, m).masternode, m.name) end
            dial(os_[11], n)
            H.wait(function() return row_of(n, os_[11]) end, 5, "o11 connected")
            H.wait(function() return n:count("Evicting ") >= 1 end, 5, "an eviction")
            for _, m in ipairs(ms) do assert.is_truthy(row_of(n, m), m.name .. " kept") end
            local gone = 0
            for i = 1, 10 do if not row_of(n, os_[i]) then gone = gone + 1 end end
            assert.are.equal(1, gone, "one ordinary peer made room")
            assert.are.equal(12, ordinary(n))
            n:wait_log("hook evict failed: picked a masternode for an ordinary peer")
            assert.is_true(n:metric('tn_policy_hook_errors_total{hook="evict"}') >= 1)
        end)
    end)

    it("an edited eviction rule, reloaded, decides the next eviction without a restart", function()
        H.with_net(function(net)
            local pdir = net.dir .. "/policies"
            os.execute("cp -r policies " .. pdir)
            local n = net:node("n", { max_peers = 13, policy_dir = pdir, policy_tick_interval = 0.3 })
            n:start()
            local ps = {}
            for i = 1, 15 do ps[i] = net:node("p" .. i) end
            start_all(ps)
            for i = 1, 13 do
                dial(ps[i], n)
                H.wait(function() return row_of(n, ps[i]) end, 5, "p" .. i .. " connected")
            end
            H.sleep(0.5)
            -- the default rule: p1, the longest connected, is protected
            dial(ps[14], n)
            H.wait(function() return n:count("Evicting ") == 1 end, 5, "a first eviction")
            assert.is_truthy(row_of(n, ps[1]), "p1 protected by the default rule")
            -- the operator's rule: the longest connected goes first
            local text = H.read_file(pdir .. "/eviction.lua")
            local override = "local default = M.evict\n"
                .. "function M.evict(list, ctx)\n"
                .. "    local pick\n"
                .. "    for _, p in ipairs(list) do\n"
                .. "        if not p.masternode and (not pick or p.connected_s > pick.connected_s) then\n"
                .. "            pick = p\n"
                .. "        end\n"
                .. "    end\n"
                .. "    return pick and pick.addr or default(list, ctx)\n"
                .. "end\n"
                .. "M.tests = nil -- the default rule's self-tests: the operator writes new ones\n"
                .. "\nreturn M\n"
            local body = assert(text:match("^(.*\n)return M\n$"), "eviction.lua ends with return M")
            H.write_file(pdir .. "/eviction.lua.new", body .. override)
            os.rename(pdir .. "/eviction.lua.new", pdir .. "/eviction.lua") -- as editors save
            n:wait_log("Policy generation 2 loaded", 10)
            dial(ps[15], n)
            H.wait(function() return n:count("Evicting ") == 2 end, 5, "a second eviction")
            n:wait_log("Evicting " .. ps[1].ip .. " (inbound")
            assert.is_falsy(row_of(n, ps[1]), "p1 evicted by the edited rule")
            assert.is_truthy(row_of(n, ps[15]))
            assert.are.equal(1, n.starts, "no restart")
        end)
    end)

    -- f syncs from p1; p2 and p3 join later. f's scoring ranks p1 > p2 > p3 (by name: a test
    -- policy, so "best" is unambiguous). p1 is killed mid-download: the failover hook must
    -- continue from p2, the next best, at once.
    it("failover: the best peer killed during sync, sync goes on from the next best", function()
        H.with_net(function(net)
            local keys = K.keys(3)
            local ids = K.ids(keys)
            local cfg = { masternodes = ids, block_interval = 0.2, max_frame_size = 2048,
                max_block_size = 1024, test_sync_serve_delay = 0.3 }
            local prod = {}
            for i = 1, 3 do prod[i] = K.node(net, "p" .. i, cfg, keys[i]) end
            K.mesh(prod)
            K.start_all(prod)
            K.wait_mesh(prod)
            H.wait(function() return K.chain(prod[1]).height >= 60 end, 30, "60 blocks")
            local pdir = net.dir .. "/policies"
            os.execute("cp -r policies " .. pdir)
            local body = assert(H.read_file(pdir .. "/scoring.lua"):match("^(.*\n)return M\n$"))
            H.write_file(pdir .. "/scoring.lua", body .. "local base = M.score\n"
                .. "function M.score(peer)\n"
                .. "    local i = tonumber((peer.name or \"\"):match(\"^p(%d+)$\"))\n"
                .. "    return i and 100 - 10 * i or base(peer)\n"
                .. "end\n"
                .. "M.tests = nil\n\nreturn M\n")
            local f = K.node(net, "f", { masternodes = ids, block_interval = 0.2, max_frame_size = 2048,
                max_block_size = 1024, policy_dir = pdir, policy_tick_interval = 0.2,
                persistent_peers = { prod[1]:addr() } })
            f:start()
            f:wait_log("Syncing from " .. prod[1].ip, 10)
            for i = 2, 3 do assert.is_true(f:ctl({ cmd = "connect", addr = prod[i]:addr() }).ok) end
            f:wait_connected(prod, 10)
            H.wait(function()
                local r2, r3 = row_of(f, prod[2]), row_of(f, prod[3])
                return r2 and r3 and r2.score == 80 and r3.score == 70
            end, 5, "f to score its peers")
            H.wait(function() return K.chain(f).height > 0 end, 5, "f's first blocks from p1")
            local h_before = K.chain(f).height
            assert.is_true(h_before < K.chain(prod[2]).height - 20, "f is mid-download")
            local t_kill = H.now()
            prod[1]:kill()
            local line = nil
            H.wait(function()
                for l in f:log():gmatch("[^\n]+") do
                    if l:find("Sync peer " .. prod[1].ip .. " lost", 1, true) then line = l end
                end
                return line
            end, 5, "the failover")
            local ms = (H.now() - t_kill) * 1000
            assert.is_truthy(line:find("with " .. prod[2].ip, 1, true), line)
            K.wait_same_tip({ prod[2], f }, 20, h_before + 20)
            io.stderr:write(string.format("\n[peers_spec] sync failover: best peer killed at height "
                .. "%d, next best took over %.0f ms after the kill (seen in the log; the node's own "
                .. "delay is the TCP close plus one loop turn)\n", h_before, ms))
            assert.is_true(ms < 3000)
        end)
    end)

    it("masternodes dial every masternode they know, in reserved slots beyond max_peers", function()
        H.with_net(function(net)
            local keys = K.keys(4)
            local ids = K.ids(keys)
            local ms = {}
            for i = 1, 4 do
                ms[i] = K.node(net, "m" .. i, { masternodes = ids, min_peers = 1, max_peers = 1,
                    discovery_interval = 0.3 }, keys[i])
            end
            -- m1 knows the others only through peer exchange with the hub
            local hub = net:node("hub", { masternodes = ids })
            for i = 2, 4 do ms[i].cfg.persistent_peers = { hub:addr() } end
            ms[1].cfg.persistent_peers = { hub:addr() }
            hub:start()
            start_all(ms)
            -- every masternode reaches the other three despite max_peers 1: reserved slots
            H.wait(function()
                for i = 1, 4 do
                    local k = 0
                    for j = 1, 4 do
                        local r = i ~= j and row_of(ms[i], ms[j])
                        if r and r.hello and r.masternode then k = k + 1 end
                    end
                    if k < 3 then return false end
                end
                return true
            end, 20, "a full mesh of masternodes")
            -- their only other link is the hub: each of the 6 masternode links is a dial of
            -- one of them (both, when they crossed)
            local dials = 0
            for i = 1, 4 do dials = dials + ms[i]:count("Dialing masternode ") end
            assert.is_true(dials >= 6, dials .. " masternode dials")
            for i = 1, 4 do
                assert.are.equal(3, ms[i]:metric("tn_peers_masternode_slots"))
                assert.is_true(ordinary(ms[i]) <= 1)
            end
        end)
    end)
end)
