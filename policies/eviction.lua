-- Which connection to close when over max_peers (seed §10 Peer Limits: "close lowest quality
-- connections when at limit", "prioritize masternode connections", "keep connections to
-- geographically diverse peers"; §23 Masternode Peer Priority; §21 Geographic Diversity).
--
--   evict(list, ctx) -> addr of the connection to close, or nil to close none (the newcomer is
--       then refused). See README.md, "The hook contract".
--       list = { {addr=, ip=, id=, dir=, outbound=, masternode=, connected_s=, rtt_ms=, pongs=,
--                 score=, success_rate=, ...}, ... }: the established sessions
--       ctx  = { reason = "inbound"|"outbound"|"over_limit", newcomer = {...} or nil,
--                max_peers = n }
--
-- Masternodes are never chosen (the core refuses such a pick for an ordinary newcomer). Of
-- the others, a few of each kind an attacker finds hard to fake are protected (Bitcoin Core's
-- eviction works the same way): the only peer of its network group, the fastest, the longest
-- connected, and our own outbound choices up to min_peers. The lowest score among the rest
-- goes; when every one is protected, none goes and the newcomer is refused (no churn).
local M = {}
local netgroup = require("netgroup")

local PROTECT_GROUPS = 4  -- §21: keep up to 4 peers that are alone in their network group
local PROTECT_FASTEST = 4 -- §9 Response time: keep the 4 lowest RTTs
local PROTECT_LONGEST = 4 -- §2 Persistent Connections: keep the 4 longest connected
local PROTECT_OUTBOUND = tn.config.min_peers -- §10 "minimum 8": the peers we chose stay, so an
                          -- inbound flood cannot push out every connection we made (eclipse)

-- Picks up to n of `pool` (not yet in `kept`) that satisfy ok, in the order of before(a, b).
local function protect(pool, kept, n, ok, before)
    local chosen = {}
    for _, p in ipairs(pool) do
        if not kept[p] and ok(p) then chosen[#chosen + 1] = p end
    end
    table.sort(chosen, before)
    for i = 1, math.min(n, #chosen) do kept[chosen[i]] = true end
end

local function by_addr(a, b) return tostring(a.addr) < tostring(b.addr) end

function M.evict(list, ctx) -- luacheck: no unused args
    local ordinary, group_size, group = {}, {}, {}
    for _, p in ipairs(list) do
        if not p.masternode then
            ordinary[#ordinary + 1] = p
            local g = netgroup.of(p.ip or netgroup.ip_of(p.addr))
            group[p] = g
            group_size[g] = (group_size[g] or 0) + 1
        end
    end
    if #ordinary == 0 then return nil end

    local kept = {}
    protect(ordinary, kept, PROTECT_GROUPS, function(p) return group_size[group[p]] == 1 end,
        function(a, b)
            if (a.score or 0) ~= (b.score or 0) then return (a.score or 0) > (b.score or 0) end
            return by_addr(a, b)
        end)
    protect(ordinary, kept, PROTECT_FASTEST, function(p) return (p.pongs or 0) > 0 end,
        function(a, b)
            if (a.rtt_ms or 0) ~= (b.rtt_ms or 0) then return (a.rtt_ms or 0) < (b.rtt_ms or 0) end
            return by_addr(a, b)
        end)
    protect(ordinary, kept, PROTECT_LONGEST, function() return true end, function(a, b)
        if (a.connected_s or 0) ~= (b.connected_s or 0) then
            return (a.connected_s or 0) > (b.connected_s or 0)
        end
        return by_addr(a, b)
    end)
    protect(ordinary, kept, PROTECT_OUTBOUND, function(p) return p.dir == "out" end,
        function(a, b)
            if (a.score or 0) ~= (b.score or 0) then return (a.score or 0) > (b.score or 0) end
            return by_addr(a, b)
        end)

    local victim
    for _, p in ipairs(ordinary) do
        if not kept[p] then
            if not victim then
                victim = p
            else
                local sp, sv = p.score or 0, victim.score or 0
                local gp, gv = group_size[group[p]], group_size[group[victim]]
                local cp, cv = p.connected_s or 0, victim.connected_s or 0
                if sp < sv or (sp == sv and (gp > gv or (gp == gv and (cp < cv
                    or (cp == cv and by_addr(p, victim)))))) then
                    victim = p
                end
            end
        end
    end
    if not victim then
        if not (ctx and ctx.reason == "over_limit") then return nil end -- all protected: refuse
        -- over max_peers (lowered by a config reload): someone must go, the lowest score
        table.sort(ordinary, function(a, b)
            if (a.score or 0) ~= (b.score or 0) then return (a.score or 0) < (b.score or 0) end
            return by_addr(a, b)
        end)
        victim = ordinary[1]
    end
    return victim.addr
end

-- check() instead of assert(): a failure names this file and line, which the node reports.
local function check(ok, what)
    if not ok then error(what or "check failed", 2) end
end

-- Self-tests -----------------------------------------------------------------------------
local function conn(i, fields)
    local p = { addr = "10." .. i .. ".0.1:24100", ip = "10." .. i .. ".0.1", masternode = false,
        connected_s = 100, rtt_ms = 50, pongs = 10, score = 50 }
    for k, v in pairs(fields or {}) do p[k] = v end
    return p
end

M.tests = {
    never_a_masternode = function()
        local list = { conn(1, { masternode = true, score = 0 }) }
        for i = 2, 20 do list[i] = conn(2, { addr = "10.2.0." .. i .. ":1", ip = "10.2.0." .. i,
            score = 99, connected_s = i }) end
        check(M.evict(list) ~= list[1].addr, "evicted a masternode")
        check(M.evict(list) ~= nil, "an unprotected ordinary peer exists")
        check(M.evict({ conn(1, { masternode = true }) }) == nil, "masternodes only: close none")
    end,
    all_protected_closes_none_unless_over_limit = function()
        local list = { conn(1, { score = 1 }), conn(2, { score = 2 }) }
        check(M.evict(list, { reason = "inbound" }) == nil, "refuse the newcomer")
        check(M.evict(list, { reason = "over_limit" }) == list[1].addr, "lowest score goes")
    end,
    keeps_outbound_choices = function()
        local list = {}
        for i = 1, 20 do list[i] = conn(1, { addr = "10.1.0." .. i .. ":1", ip = "10.1.0." .. i,
            score = 50, connected_s = 100, rtt_ms = 100, dir = "in" }) end
        list[20].dir, list[20].score = "out", 1
        local kept = PROTECT_OUTBOUND > 0
        check((M.evict(list) ~= list[20].addr) == kept, "outbound protection is min_peers")
    end,
    lowest_score_of_the_unprotected = function()
        local list = {}
        for i = 1, 20 do list[i] = conn(1, { addr = "10.1.0." .. i .. ":1", ip = "10.1.0." .. i,
            score = 50 + i, connected_s = 10 * i, rtt_ms = 100 + i }) end
        list[15].score = 1
        check(M.evict(list) == list[15].addr)
    end,
    protects_diversity_speed_and_age = function()
        local list = {}
        for i = 1, 20 do list[i] = conn(1, { addr = "10.1.0." .. i .. ":1", ip = "10.1.0." .. i,
            score = 50, connected_s = 100, rtt_ms = 100 }) end
        list[1].ip, list[1].addr, list[1].score = "192.168.0.1", "192.168.0.1:1", 0 -- alone in its /16
        list[2].rtt_ms, list[2].score = 1, 1            -- fastest
        list[3].connected_s, list[3].score = 1e6, 2     -- oldest
        list[4].score = 3
        check(M.evict(list) == list[4].addr)
    end,
}

return M
