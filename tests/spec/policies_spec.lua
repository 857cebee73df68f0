-- The default policies (policies/*.lua), unit-tested offline through the policy test kit
-- (tests/lib/policykit.lua): the decisions an operator would notice — redial delays, bans,
-- health verdicts, scores, eviction and discovery choices — plus the kit's own fidelity to
-- the node's loader (errors, sandbox, persistent state, timers).
local kit = require("policykit")

local DIR = "policies"

local function load(cfg, opts)
    opts = opts or {}
    opts.config = cfg
    return kit.load(DIR, opts)
end

local function tmpdir()
    local p = io.popen("mktemp -d /tmp/tn-policykit.XXXXXX")
    local d = p:read("l")
    p:close()
    return d
end

local function write(dir, name, text)
    os.execute("mkdir -p '" .. (dir .. "/" .. name):match("^(.*)/[^/]*$") .. "'")
    local f = assert(io.open(dir .. "/" .. name, "wb"))
    f:write(text)
    f:close()
end

describe("default policies", function()
    it("load with every self-test passing and define the hooks of the contract", function()
        local pol = load()
        for _, h in ipairs({ "score", "health", "reconnect", "failover", "on_misbehavior", "evict",
            "discovery_order", "rank_candidates" }) do
            assert.is_true(pol:has(h), h)
        end
        assert.is_false(pol:has("on_tick"), "on_tick is left to operators")
        assert.are.equal(1, pol:logged("Policy generation 1 loaded from policies (start): 5 files, 8 hooks"))
        for _, name in ipairs({ "scoring.lua", "bans.lua", "failover.lua", "eviction.lua",
            "discovery.lua" }) do
            local n = 0
            for _ in pairs(pol:module(name).tests) do n = n + 1 end
            assert.is_true(n >= 3, name .. " has " .. n .. " self-tests")
        end
    end)

    it("pass timenetd --check-policy (the node's own loader and limits)", function()
        local bin = (os.getenv("BUILD") or "build") .. "/timenetd"
        local p = io.popen(bin .. " --check-policy " .. DIR .. " 2>&1; echo rc=$?")
        local out = p:read("a")
        p:close()
        assert.is_truthy(out:find("policies: ok (5 files, 8 hooks", 1, true), out)
        assert.is_truthy(out:find("rc=0", 1, true), out)
    end)
end)

describe("failover.lua reconnect", function()
    it("backs off 5, 10, 30, 60, 300, 300 ... s and gives up after 10 failures", function()
        local pol = load()
        local d = kit.redials(pol, kit.peer(), 13, { reason = "connection refused" })
        assert.are.same({ 5, 10, 30, 60, 300, 300, 300, 300, 300, 300, false, false, false }, d)
    end)

    it("scales with reconnect_delay: 0.2, 0.4, 1.2 s (the connect spec's retry lines)", function()
        local pol = load({ reconnect_delay = 0.2 })
        local d = kit.redials(pol, kit.peer(), 3)
        assert.are.same({ 0.2, 0.4, 1.2 }, d)
    end)

    it("agrees with the node's C default for every attempt under several configs", function()
        for _, cfg in ipairs({ {}, { reconnect_delay = 0.05, reconnect_max_attempts = 3 },
            { reconnect_backoff = { 1, 3 }, reconnect_delay = 2 }, { reconnect_backoff = {} } }) do
            local pol = load(cfg)
            for attempt = 0, 14 do
                assert.are.equal(kit.C_DEFAULT.reconnect(pol.cfg, nil, attempt),
                    pol:decide("reconnect", kit.peer(), attempt, "connection refused"),
                    "attempt " .. attempt)
            end
        end
    end)

    it("starts over after a loss: attempt 0 is the first delay again", function()
        local pol = load()
        local p = kit.peer()
        kit.redials(pol, p, 10)
        assert.are.equal(5, pol:decide("reconnect", p, 0, "connection lost"))
    end)

    it("fails over to the best-scored candidate that is not behind us", function()
        local pol = load()
        local ctx = { reason = "stalled", current = "10.0.0.1:24100", height = 50, candidates = {
            { addr = "10.0.0.1:24100", score = 95, height = 60 },
            { addr = "10.0.0.2:24100", score = 70, height = 60 },
            { addr = "10.0.0.3:24100", score = 90, height = 40 },
            { addr = "10.0.0.4:24100", score = 80, height = 55 },
        } }
        assert.are.equal("10.0.0.4:24100", pol:decide("failover", ctx))
        assert.is_nil(pol:decide("failover", { candidates = {} }))
    end)
end)

describe("bans.lua", function()
    it("bans an IP for 300 s after 3 wrong magics", function()
        local pol = load()
        local v = kit.misbehave(pol, kit.peer(), "magic", 3)
        assert.are.same({ { "disconnect", 0 }, { "disconnect", 0 }, { "ban", 300 } }, v)
    end)

    it("bans a repeat offender longer each time, up to ban_long", function()
        local pol = load()
        local p = kit.peer()
        local bans = {}
        for _ = 1, 6 do
            local v = kit.misbehave(pol, p, "magic", 3)
            bans[#bans + 1] = v[3][2]
            pol:advance(v[3][2] + 1) -- the ban runs out; the offence is remembered
        end
        assert.are.same({ 300, 3600, 43200, 86400, 86400, 86400 }, bans)
        assert.are.equal(5, pol.counts.bans_escalated)
    end)

    it("forgets a repeat offender after a quiet week", function()
        local pol = load()
        local p = kit.peer()
        kit.misbehave(pol, p, "magic", 3)
        pol:advance(8 * 86400)
        assert.are.equal(300, kit.misbehave(pol, p, "magic", 3)[3][2])
    end)

    it("never bans for a version mismatch", function()
        local pol = load()
        for _, v in ipairs(kit.misbehave(pol, kit.peer(), "version", 50, { every = 1 })) do
            assert.are.same({ "disconnect", 0 }, v)
        end
    end)

    it("gives handshake failures a temporary ban at most, however often", function()
        local pol = load()
        local p = kit.peer()
        for _ = 1, 5 do
            local v = kit.misbehave(pol, p, "handshake", 3)
            assert.are.same({ { "disconnect", 0 }, { "disconnect", 0 }, { "ban", 300 } }, v)
            pol:advance(301)
        end
    end)

    it("forgives one strike per 10 quiet minutes", function()
        local pol = load()
        local p = kit.peer()
        kit.misbehave(pol, p, "magic", 2)
        pol:advance(1200) -- two quiet periods: both strikes forgiven
        assert.are.same({ { "disconnect", 0 }, { "disconnect", 0 } }, kit.misbehave(pol, p, "magic", 2))
        pol:advance(600)  -- one forgiven, one left: the second next strike bans
        assert.are.same({ { "disconnect", 0 }, { "ban", 300 } }, kit.misbehave(pol, p, "magic", 2))
    end)

    it("tolerates two invalid messages and bans at the third; bad frames count with them", function()
        local pol = load()
        local p = kit.peer()
        assert.are.same({ { "ignore", 0 }, { "ignore", 0 }, { "ban", 300 } },
            kit.misbehave(pol, p, "message", 3))
        local q = kit.peer()
        kit.misbehave(pol, q, "frame", 1)
        kit.misbehave(pol, q, "message", 1)
        assert.are.same({ { "ban", 300 } }, kit.misbehave(pol, q, "message", 1))
    end)

    it("keeps strikes per IP: other IPs are not affected", function()
        local pol = load()
        local a, b = kit.peer(), kit.peer()
        kit.misbehave(pol, a, "magic", 2)
        assert.are.same({ { "disconnect", 0 } }, kit.misbehave(pol, b, "magic", 1))
        assert.are.same({ { "ban", 300 } }, kit.misbehave(pol, a, "magic", 1))
    end)

    it("refuses the 6th-9th connection attempt in a minute and bans at the 10th (§12 and §13)", function()
        local pol = load()
        local p = kit.peer()
        -- the core reports attempts beyond 5 per minute: reports 1-4 are attempts 6-9
        local v = kit.misbehave(pol, p, "connections", 5, { every = 5 })
        assert.are.same({ { "disconnect", 0 }, { "disconnect", 0 }, { "disconnect", 0 },
            { "disconnect", 0 }, { "ban", 300 } }, v)
        -- the same reports a minute apart are never a ban
        local q = kit.peer()
        for _, x in ipairs(kit.misbehave(pol, q, "connections", 10, { every = 61 })) do
            assert.are.same({ "disconnect", 0 }, x)
        end
    end)

    it("takes the attempt thresholds from the config keys the core counts with", function()
        local pol = load({ connection_attempts_free = 2, connection_attempts_max = 4 })
        local v = kit.misbehave(pol, kit.peer(), "connections", 2, { every = 1 })
        assert.are.same({ { "disconnect", 0 }, { "ban", 300 } }, v) -- attempts 3 and 4
    end)

    it("ignores two flood reports a minute, disconnects at the third, bans at the sixth", function()
        local pol = load()
        local p = kit.peer()
        -- the core reports a class over its limit at most once a second per session
        assert.are.same({ { "ignore", 0 }, { "ignore", 0 }, { "disconnect", 0 }, { "disconnect", 0 },
            { "disconnect", 0 }, { "ban", 300 } }, kit.misbehave(pol, p, "flood", 6, { every = 1 }))
        -- a peer at its limit once a minute is never more than ignored
        local q = kit.peer()
        for _, x in ipairs(kit.misbehave(pol, q, "flood", 10, { every = 61 })) do
            assert.are.same({ "ignore", 0 }, x)
        end
    end)

    it("keeps strikes across a reload and a restart (tn.persist)", function()
        local pol = load()
        local p = kit.peer()
        kit.misbehave(pol, p, "magic", 1)
        assert.is_true(pol:reload())
        kit.misbehave(pol, p, "magic", 1)
        assert.is_true(pol:restart())
        assert.are.same({ { "ban", 300 } }, kit.misbehave(pol, p, "magic", 1))
        -- and a state saved by one node process starts the next one
        local next_run = kit.load(DIR, { state = pol:export(), time = pol.clock + 301 })
        kit.misbehave(next_run, p, "magic", 2)
        assert.are.same({ { "ban", 3600 } }, kit.misbehave(next_run, p, "magic", 1))
    end)

    it("keeps its state bounded under a flood of IPs", function()
        local pol = load()
        for i = 1, 2100 do
            pol:decide("on_misbehavior", kit.peer({ ip = "10.9." .. (i // 250) .. "." .. (i % 250) }),
                "frame", "x", 1)
        end
        assert.are.equal(2048, pol:state("bans").n)
        local n = 0
        for _ in pairs(pol:state("bans").ips) do n = n + 1 end
        assert.are.equal(2048, n)
        assert.is_truthy(pol:export().bans, "the state still fits policy_state_max")
    end)
end)

describe("scoring.lua", function()
    local function scored(pol, fields) return pol:decide("score", kit.peer(fields)) end

    it("scores in [0, 100], a masternode above an equal ordinary peer", function()
        local pol = load()
        local base = { connected_s = 1800, pings = 10, pongs = 10, rtt_ms = 30, height = 5 }
        local s = scored(pol, base)
        assert.is_true(s > 0 and s <= 100)
        base.masternode = true
        assert.is_true(scored(pol, base) > s)
        assert.is_true(scored(pol, { sessions = 100, disconnects = 100, pings = 10, missed = 10,
            rtt_ms = 10000, pongs = 1 }) < 5)
        assert.is_true(scored(pol, { masternode = true, connected_s = 1e7, pings = 9, pongs = 9,
            rtt_ms = 1, height = 9 }) <= 100)
    end)

    it("prefers low RTT (samples as the core smooths them)", function()
        local pol = load()
        local fast, slow = kit.peer({ connected_s = 600 }), kit.peer({ connected_s = 600 })
        kit.rtt(pol, fast, { 20, 25, 30 })
        kit.rtt(pol, slow, { 900, 950, 1000 })
        assert.is_true(pol:decide("score", fast) > pol:decide("score", slow))
    end)

    it("lowers the score for late and missed pongs, more for missed", function()
        local pol = load()
        local s_ok = scored(pol, { pings = 4, pongs = 4, rtt_ms = 30 })
        local s_late = scored(pol, { pings = 4, pongs = 4, late = 1, rtt_ms = 30 })
        local s_missed = scored(pol, { pings = 4, pongs = 3, missed = 1, rtt_ms = 30 })
        assert.is_true(s_ok > s_late, "late costs")
        assert.is_true(s_late > s_missed, "missed costs more")
    end)

    it("rewards uptime and a good connection record, punishes disconnects", function()
        local pol = load()
        assert.is_true(scored(pol, { connected_s = 3600 }) > scored(pol, { connected_s = 60 }))
        assert.is_true(scored(pol, { sessions = 1 }) > scored(pol, { sessions = 6, disconnects = 5 }))
        local p = kit.peer({ connected_s = 600 })
        local before = pol:decide("score", p)
        kit.drop(p)
        kit.connect(p)
        kit.uptime(p, 600)
        assert.is_true(pol:decide("score", p) < before, "a drop costs")
    end)

    it("is a pure function: the same peer, the same score", function()
        local pol = load()
        local p = kit.peer({ connected_s = 100, pings = 5, pongs = 4, late = 1, missed = 1, rtt_ms = 80 })
        local s = pol:decide("score", p)
        for _ = 1, 5 do assert.are.equal(s, pol:decide("score", p)) end
    end)
end)

describe("scoring.lua health", function()
    it("tolerates a late pong, whatever the count", function()
        local pol = load({ pong_deadline = 0.5 })
        local p = kit.peer()
        local v = kit.rtt(pol, p, { 600, 700, 5000, 10000 })
        assert.are.same({ "tolerate", "tolerate", "tolerate", "tolerate" }, v)
        assert.are.equal(4, p.late)
        assert.is_true(p.connected)
    end)

    it("closes after 3 missed pongs in a row, not before", function()
        local pol = load()
        local p = kit.peer()
        assert.are.same({ "tolerate", "tolerate", "close" }, kit.miss(pol, p, 5))
        assert.is_false(p.connected)
    end)

    it("starts counting again after a pong", function()
        local pol = load()
        local p = kit.peer()
        assert.are.same({ "tolerate", "tolerate" }, kit.miss(pol, p, 2))
        kit.rtt(pol, p, { 40 })
        assert.are.same({ "tolerate", "tolerate" }, kit.miss(pol, p, 2))
        assert.is_true(p.connected)
    end)

    it("follows missed_pongs_close", function()
        local pol = load({ missed_pongs_close = 5 })
        assert.are.same({ "tolerate", "tolerate", "tolerate", "tolerate", "close" },
            kit.miss(pol, kit.peer(), 9))
    end)
end)

describe("eviction.lua", function()
    local function conn(ip, fields)
        local c = { addr = ip .. ":24100", ip = ip, masternode = false, connected_s = 100,
            rtt_ms = 50, pongs = 5, score = 50 }
        for k, v in pairs(fields or {}) do c[k] = v end
        return c
    end

    it("never picks a masternode while an ordinary peer exists", function()
        local pol = load()
        local seed = 7
        local function rnd(n) -- a small deterministic generator: the same lists every run
            seed = (seed * 1103515245 + 12345) % 2147483648
            return seed % n
        end
        for _ = 1, 200 do
            local list = {}
            for i = 1, 2 + rnd(30) do
                list[i] = conn("10." .. rnd(4) .. "." .. rnd(250) .. "." .. i, { masternode = rnd(3) == 0,
                    score = rnd(100), connected_s = rnd(10000), rtt_ms = rnd(500), pongs = rnd(3) })
            end
            list[#list + 1] = conn("10.200.0.1", { masternode = false, score = 100, connected_s = 1e6 })
            local pick = pol:decide("evict", list)
            local ordinary = 0
            for _, c in ipairs(list) do
                if c.addr == pick then assert.is_false(c.masternode, "evicted a masternode") end
                if not c.masternode then ordinary = ordinary + 1 end
            end
            -- at most 4 + 4 + 4 are protected (groups, fastest, longest); with more, one goes
            if ordinary > 12 then assert.is_not_nil(pick) end
        end
        assert.is_nil(pol:decide("evict", { conn("10.0.0.1", { masternode = true }) }))
    end)

    it("closes the lowest-scored unprotected peer", function()
        local pol = load()
        local list = {}
        for i = 1, 16 do
            list[i] = conn("10.1.0." .. i, { score = 60 + i, connected_s = 100 + i, rtt_ms = 100 - i })
        end
        list[3].score = 5 -- neither among the 4 fastest nor the 8 longest connected
        assert.are.equal(list[3].addr, pol:decide("evict", list))
    end)

    it("protects the only peer of a network group, the fastest and the oldest", function()
        local pol = load()
        local list = {}
        for i = 1, 16 do list[i] = conn("10.1.0." .. i, { score = 50, rtt_ms = 100, connected_s = 100 }) end
        list[1] = conn("2001:db8::1", { score = 1, addr = "[2001:db8::1]:24100" }) -- alone in its /32
        list[2].rtt_ms, list[2].score = 1, 2
        list[3].connected_s, list[3].score = 1e6, 3
        list[4].score = 4
        assert.are.equal(list[4].addr, pol:decide("evict", list))
    end)

    it("closes none when every ordinary peer is protected, unless over max_peers", function()
        local pol = load()
        local list = {}
        for i = 1, 12 do list[i] = conn("10." .. i .. ".0.1", { score = i }) end
        list[13] = conn("10.99.0.1", { masternode = true, score = 0 })
        assert.is_nil(pol:decide("evict", list, { reason = "inbound" }))
        assert.are.equal("10.1.0.1:24100", pol:decide("evict", list, { reason = "over_limit" }))
    end)

    it("keeps our outbound choices up to min_peers", function()
        local pol = load()
        local list = {}
        for i = 1, 30 do
            list[i] = conn("10.1.0." .. i, { score = 50, connected_s = 100 + i, rtt_ms = 200 - i,
                dir = i <= 8 and "out" or "in" })
        end
        list[1].score, list[9].score = 1, 2 -- the worst two: one outbound, one inbound
        assert.are.equal(list[9].addr, pol:decide("evict", list, { reason = "inbound" }))
        assert.are.equal(list[1].addr, load({ min_peers = 0 }):decide("evict", list))
    end)

    it("among equal scores, takes from the most crowded network group", function()
        local pol = load()
        local list = {}
        for i = 1, 10 do list[#list + 1] = conn("10.1.0." .. i, { pongs = 0, connected_s = 1000 + i }) end
        for j = 1, 4 do list[#list + 1] = conn("10.2.0." .. j, { pongs = 0, connected_s = 10 + j }) end
        -- 10.2.0.1 is the youngest, but 10.1/16 holds ten connections
        assert.are.equal("10.1.0.1:24100", pol:decide("evict", list))
    end)
end)

describe("discovery.lua", function()
    it("tries seeds, the API, peer exchange, then the cache (seed §8)", function()
        local pol = load()
        assert.are.same({ "seeds", "api", "exchange", "cache" }, pol:decide("discovery_order", {}))
    end)

    it("falls back past sources that are unavailable or keep failing", function()
        local pol = load()
        local order = pol:decide("discovery_order", { connected = 0, min_peers = 8, sources = {
            seeds = { available = true, failures = 5 }, api = { available = false },
            exchange = { available = false }, cache = { available = true } } })
        assert.are.same({ "cache", "seeds" }, order)
        assert.are.same({ "seeds", "api", "exchange", "cache" }, pol:decide("discovery_order",
            { sources = { seeds = { available = false }, api = { available = false },
                exchange = { available = false }, cache = { available = false } } }))
    end)

    it("ranks masternodes first and spreads the first dials over network groups", function()
        local pol = load()
        local list = {}
        for i = 1, 6 do
            list[#list + 1] = { addr = "10.1.0." .. i .. ":1", ip = "10.1.0." .. i, score = 90 }
        end
        for i = 1, 3 do
            local ip = "10." .. (10 + i) .. ".0.1"
            list[#list + 1] = { addr = ip .. ":1", ip = ip, score = 10 }
        end
        list[#list + 1] = { addr = "10.1.0.99:1", ip = "10.1.0.99", masternode = true }
        local r = pol:decide("rank_candidates", list)
        assert.are.equal(#list, #r)
        assert.are.equal("10.1.0.99:1", r[1])
        local groups = {}
        for i = 2, 5 do groups[r[i]:match("^(%d+%.%d+)%.")] = true end
        local n = 0
        for _ in pairs(groups) do n = n + 1 end
        assert.are.equal(4, n, "the first four ordinary dials reach four /16 groups")
    end)
end)

describe("policy test kit", function()
    local dir
    before_each(function() dir = tmpdir() end)
    after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

    local function node_check(d)
        local bin = (os.getenv("BUILD") or "build") .. "/timenetd"
        local p = io.popen(bin .. " --check-policy " .. d .. " 2>&1")
        local out = p:read("a")
        p:close()
        return out
    end

    it("rejects a hook defined twice, naming both files, as the node does", function()
        write(dir, "a.lua", "return { score = function() return 1 end }\n")
        write(dir, "b.lua", "return { score = function() return 2 end }\n")
        local pol, err = kit.try_load(dir)
        assert.is_nil(pol)
        assert.are.equal(dir .. "/b.lua: hook 'score' is already defined in " .. dir .. "/a.lua", err)
        assert.is_truthy(node_check(dir):find(err, 1, true))
    end)

    it("rejects a failing self-test with file:line and keeps the old generation on reload", function()
        write(dir, "a.lua", "local M = {}\nfunction M.score() return 1 end\n"
            .. "M.tests = { one = function() assert(M.score() == 1) end }\nreturn M\n")
        local pol = kit.load(dir)
        write(dir, "a.lua", "local M = {}\nfunction M.score() return 2 end\n"
            .. "M.tests = { one = function() if M.score() ~= 1 then error('not one') end end }\n"
            .. "return M\n")
        local ok, err = pol:reload()
        assert.is_false(ok)
        assert.are.equal(dir .. "/a.lua:3: not one (self-test one failed); "
            .. "policy generation 1 is still active", err)
        assert.are.equal(1, pol:decide("score", kit.peer()))
        assert.is_truthy(node_check(dir):find(dir .. "/a.lua:3: not one (self-test one failed)", 1, true))
    end)

    it("requires each file to return a table, and hooks to be functions", function()
        write(dir, "a.lua", "score = 1\n")
        local _, err = kit.try_load(dir)
        assert.are.equal(dir .. "/a.lua: must return a table of hooks (got nil)", err)
        write(dir, "a.lua", "return { health = 'close' }\n")
        _, err = kit.try_load(dir)
        assert.are.equal(dir .. "/a.lua: 'health' must be a function, not a string", err)
    end)

    it("sandboxes like the node: no io, debug or os.execute; require reads lib/; no __gc", function()
        write(dir, "lib/util.lua", "return { twice = function(x) return 2 * x end }\n")
        write(dir, "a.lua", [[
local util = require("util")
local M = {}
function M.score() return util.twice(21) end
M.tests = {
  function() assert(io == nil and debug == nil and os.execute == nil and os.getenv == nil) end,
  function() assert(not pcall(setmetatable, {}, { __gc = function() end })) end,
  function() assert(not pcall(string.find, ("a"):rep(60), ("a*"):rep(6) .. "b")) end,
  function() assert(type(os.time()) == "number" and getmetatable("") == "string") end,
}
return M
]])
        local pol = kit.load(dir)
        assert.are.equal(42, pol:decide("score", kit.peer()))
        assert.is_truthy(node_check(dir):find("ok (1 files, 1 hooks, 4 self-tests passed)", 1, true))
    end)

    it("stops a runaway hook at its budget (pcall cannot swallow it) and uses the C default", function()
        write(dir, "a.lua", [[
return { reconnect = function() while true do pcall(function() while true do end end) end end }
]])
        local pol = kit.load(dir, { budget = 0.05, config = { reconnect_delay = 0.2 } })
        assert.are.equal(0.4, pol:decide("reconnect", kit.peer(), 1, "x"))
        assert.are.equal(0.4, pol:decide("reconnect", kit.peer(), 1, "x"))
        assert.are.equal(2, #pol.errors)
        assert.is_truthy(pol.errors[1].error:find("exceeded its CPU budget", 1, true))
        assert.are.equal(1, pol:logged("hook reconnect failed"), "one log line per error kind")
    end)

    it("validates results like the node: NaN, wrong types and out-of-range fall back", function()
        write(dir, "a.lua", [[
return {
  score = function() return 0/0 end,
  on_misbehavior = function() return "ban", -1 end,
  health = function() return "maybe" end,
  reconnect = function() return 1e9 end,
}
]])
        local pol = kit.load(dir)
        assert.are.equal(0, pol:decide("score", kit.peer()))
        assert.are.same({ { "disconnect", 0 } }, kit.misbehave(pol, kit.peer(), "magic", 1))
        assert.are.equal("tolerate", pol:decide("health", kit.peer(), "late"))
        assert.are.equal(5, pol:decide("reconnect", kit.peer(), 0, "x"))
        assert.are.equal(4, #pol.errors)
    end)

    it("keeps tn.persist state across reloads and migrates it when the version changes", function()
        local v1 = "local s = tn.persist('k', 1, function() return { n = 0 } end)\n"
            .. "return { score = function() s.n = s.n + 1; return s.n end }\n"
        write(dir, "a.lua", v1)
        local pol = kit.load(dir)
        pol:decide("score", kit.peer())
        pol:decide("score", kit.peer())
        assert.is_true(pol:reload())
        assert.are.equal(3, pol:decide("score", kit.peer()))
        write(dir, "a.lua", "local s = tn.persist('k', 2, function() return { count = 0 } end,\n"
            .. "  function(old, v) assert(v == 1); return { count = old.n * 10 } end)\n"
            .. "return { score = function() s.count = s.count + 1; return s.count end }\n")
        assert.is_true(pol:reload())
        assert.are.equal(31, pol:decide("score", kit.peer()))
        write(dir, "a.lua", v1:gsub("'k', 1", "'k', 3"))
        assert.is_true(pol:reload())
        assert.are.equal(1, pol:logged("state 'k' reset: version 2 -> 3 and no migrate function"))
        assert.are.equal(1, pol:decide("score", kit.peer()))
    end)

    it("runs tn.after timers when the clock is advanced, and tags peers", function()
        write(dir, "a.lua", [[
local M = { fired = {} }
function M.score(peer)
  tn.tag(peer, "seen")
  tn.after(10, function() M.fired[#M.fired + 1] = tn.time() end)
  return 1
end
return M
]])
        local pol = kit.load(dir, { time = 1000 })
        local p = kit.peer()
        pol:decide("score", p)
        assert.are.equal("seen", p.tag)
        pol:advance(9)
        assert.are.same({}, pol:module("a").fired)
        pol:advance(2)
        assert.are.same({ 1010 }, pol:module("a").fired)
    end)

    it("gives read-only config and peers, and an error for an unknown config key", function()
        write(dir, "a.lua", [[
local M = {}
M.tests = {
  function() assert(tn.config.max_peers == 50) end,
  function() assert(not pcall(function() return tn.config.max_peer end)) end,
  function() assert(not pcall(function() tn.config.max_peers = 1 end)) end,
}
function M.health(peer) peer.late = 0; return "tolerate" end
return M
]])
        local pol = kit.load(dir)
        assert.has_error(function() pol:call("health", kit.peer(), "late") end)
        assert.is_truthy(pol.logs[1].text:find("3 self-tests passed", 1, true))
    end)
end)
