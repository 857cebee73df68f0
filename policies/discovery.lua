-- Peer discovery (seed §8 Peer Discovery Strategy, §21 Geographic Diversity, §23 Masternode
-- Peer Priority). Proposed contracts, wired by the discovery issue; see README.md.
--
--   discovery_order(ctx) -> list of source names, tried in order while below min_peers:
--       "seeds" (config), "api" (HTTP discovery), "exchange" (ask peers), "cache" (disk).
--       ctx = { connected = n, min_peers = n,
--               sources = { seeds = { available = bool, failures = n }, api = {...}, ... } }
--   rank_candidates(list) -> list of addresses in dial order (a subset is fine).
--       list = { { addr=, ip=, masternode=, failures=, score=, last_success=, source= }, ... }
local M = {}
local netgroup = require("netgroup")

-- seed §8 "Methods (in order)": config seeds, API discovery, peer exchange, cached peers
local SOURCES = { "seeds", "api", "exchange", "cache" }
local SOURCE_FAILURES_DEMOTE = 3 -- §8 "with fallback": a source failing 3 times in a row goes last

function M.discovery_order(ctx)
    local srcs = ctx and ctx.sources or {}
    local first, last = {}, {}
    for _, name in ipairs(SOURCES) do
        local s = srcs[name] or {}
        if s.available ~= false then
            if (s.failures or 0) >= SOURCE_FAILURES_DEMOTE then
                last[#last + 1] = name
            else
                first[#first + 1] = name
            end
        end
    end
    for _, name in ipairs(last) do first[#first + 1] = name end
    if #first == 0 then return { table.unpack(SOURCES) } end -- nothing looks usable: try all
    return first
end

-- Best first within a network group: fewer failures, higher score, recent success, address.
local function better(a, b)
    local fa, fb = a.failures or 0, b.failures or 0
    if fa ~= fb then return fa < fb end
    local sa, sb = a.score or 0, b.score or 0
    if sa ~= sb then return sa > sb end
    local la, lb = a.last_success or 0, b.last_success or 0
    if la ~= lb then return la > lb end
    return tostring(a.addr) < tostring(b.addr)
end

-- Round robin over network groups: the first k dials reach k different groups (§21).
local function diverse(cands, out)
    local groups, order = {}, {}
    for _, c in ipairs(cands) do
        local g = netgroup.of(c.ip or netgroup.ip_of(c.addr))
        if not groups[g] then
            groups[g] = {}
            order[#order + 1] = g
        end
        table.insert(groups[g], c)
    end
    for _, g in ipairs(order) do table.sort(groups[g], better) end
    table.sort(order, function(x, y)
        local a, b = groups[x][1], groups[y][1]
        if a == b then return x < y end
        if better(a, b) then return true end
        if better(b, a) then return false end
        return x < y
    end)
    local round = 1
    repeat
        local any = false
        for _, g in ipairs(order) do
            local c = groups[g][round]
            if c then
                out[#out + 1] = c.addr
                any = true
            end
        end
        round = round + 1
    until not any
    return out
end

function M.rank_candidates(list)
    local masternodes, others = {}, {}
    for _, c in ipairs(list) do
        if c.addr then
            if c.masternode then masternodes[#masternodes + 1] = c else others[#others + 1] = c end
        end
    end
    return diverse(others, diverse(masternodes, {})) -- §23: masternodes first
end

-- check() instead of assert(): a failure names this file and line, which the node reports.
local function check(ok, what)
    if not ok then error(what or "check failed", 2) end
end

-- Self-tests -----------------------------------------------------------------------------
M.tests = {
    seed_order_by_default = function()
        local o = M.discovery_order({})
        check(table.concat(o, ",") == "seeds,api,exchange,cache")
    end,
    skips_unavailable_and_demotes_failing = function()
        local o = M.discovery_order({ sources = { seeds = { available = false },
            api = { failures = SOURCE_FAILURES_DEMOTE } } })
        check(table.concat(o, ",") == "exchange,cache,api")
    end,
    masternodes_first_then_distinct_groups = function()
        local list = {
            { addr = "10.1.0.1:1", ip = "10.1.0.1", score = 90 },
            { addr = "10.1.0.2:1", ip = "10.1.0.2", score = 80 },
            { addr = "10.2.0.1:1", ip = "10.2.0.1", score = 10 },
            { addr = "10.3.0.1:1", ip = "10.3.0.1", masternode = true },
        }
        local r = M.rank_candidates(list)
        check(table.concat(r, " ") == "10.3.0.1:1 10.1.0.1:1 10.2.0.1:1 10.1.0.2:1", table.concat(r, " "))
    end,
}

return M
