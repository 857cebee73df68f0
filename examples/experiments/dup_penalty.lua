-- Scoring experiment: penalise peers that relay duplicates. Every node originates a small
-- `rumor` every ORIGIN_INTERVAL and floods it: a node forwards each rumor it sees for the
-- first time to its relay set. Each node scores its peers by what they deliver,
--
--   score(peer) = firsts / (firsts + duplicates)     (1 = only news, 0 = only duplicates)
--
-- and, when the rule is on (feature flag `dup_penalty_rule`), stops forwarding to peers whose
-- score is below MIN_SCORE after WARMUP deliveries, keeping at least MIN_FANOUT peers (the
-- best scored). Without the rule (feature `dup_penalty` alone) every node floods to every
-- peer: the baseline. Run both on the same seed and compare delivery, duplicates and latency
-- (the demo's propagation table, type `rumor`); tests/spec/experiments_spec.lua does that.
-- Each node logs its scores every REPORT_INTERVAL:
--
--   Policy: dup_penalty: rule=on relay_to=2/4 scores n2=0.61 n3=0.12 n4=0.55 n5=0.08
--
-- The rumor type has no core dedup (dedup = false) on purpose: the handler must see every
-- copy to count duplicates, so the node keeps its own bounded seen-set.
local FEATURE = "dup_penalty"
local RULE = "dup_penalty_rule"
local RUMOR_ID = 0x8102
local ORIGIN_INTERVAL = 0.5 -- seconds between rumors a node originates
local REPORT_INTERVAL = 1
local WARMUP = 10 -- deliveries from a peer before the rule judges it
local MIN_SCORE = 0.3 -- below this a peer is dropped from the relay set...
local MIN_FANOUT = 2 -- ...unless the relay set would get smaller than this
local SEEN_MAX = 4096 -- rumor ids remembered (a ring)

local M = {}

-- The rule, pure: stats = { name -> {firsts=, dups=} }, peers = list of names. Returns the
-- set of peers to relay to.
function M.relay_set(stats, peers, rule_on)
    local set = {}
    if not rule_on then
        for _, p in ipairs(peers) do set[p] = true end
        return set
    end
    local ranked = {}
    for _, p in ipairs(peers) do
        local s = stats[p] or { firsts = 0, dups = 0 }
        local total = s.firsts + s.dups
        ranked[#ranked + 1] = { name = p, score = total > 0 and s.firsts / total or 1, total = total }
    end
    table.sort(ranked, function(a, b)
        if a.score ~= b.score then return a.score > b.score end
        return a.name < b.name
    end)
    for i, r in ipairs(ranked) do
        if i <= MIN_FANOUT or r.total < WARMUP or r.score >= MIN_SCORE then set[r.name] = true end
    end
    return set
end

M.tests = {
    baseline_relays_to_everyone = function()
        local s = M.relay_set({ a = { firsts = 0, dups = 99 } }, { "a", "b" }, false)
        if not (s.a and s.b) then error("baseline must flood", 2) end
    end,
    rule_drops_duplicate_relayers = function()
        local stats = { a = { firsts = 9, dups = 1 }, b = { firsts = 8, dups = 2 },
            c = { firsts = 1, dups = 19 } }
        local s = M.relay_set(stats, { "a", "b", "c" }, true)
        if not (s.a and s.b) or s.c then error("c relays mostly duplicates", 2) end
    end,
    rule_keeps_min_fanout_and_new_peers = function()
        local stats = { a = { firsts = 1, dups = 19 }, b = { firsts = 0, dups = 20 },
            c = { firsts = 0, dups = 2 } }
        local s = M.relay_set(stats, { "a", "b", "c" }, true)
        if not (s.a and s.b and s.c) then error("min fanout and warm-up", 2) end
    end,
}

if not tn.feature(FEATURE) then return M end

local rule_on = tn.feature(RULE)
local stats = {} -- peer name -> { firsts, dups }
local seen, ring, ring_pos = {}, {}, 0
local relay = nil -- peer name -> true (nil: not computed yet)
local me_seq = 0

local function name_of(p) return (p.name and p.name ~= "") and p.name or p.short_id end

local function remember(id)
    ring_pos = ring_pos % SEEN_MAX + 1
    if ring[ring_pos] then seen[ring[ring_pos]] = nil end
    ring[ring_pos] = id
    seen[id] = true
end

local function forward(msg, except)
    for _, p in ipairs(tn.peers()) do
        local name = name_of(p)
        if name ~= except and (relay == nil or relay[name]) then tn.send(p.id, "rumor", msg) end
    end
end

tn.message {
    name = "rumor",
    id = RUMOR_ID,
    fields = { { "origin", "bytes" }, { "seq", "u32" }, { "pad", "bytes" } },
    class = "data",
    rate = 1000,
    dedup = false,
    handler = function(peer, _, m)
        local from = name_of(peer)
        local s = stats[from] or { firsts = 0, dups = 0 }
        stats[from] = s
        local id = m.origin .. "/" .. m.seq
        if seen[id] then
            s.dups = s.dups + 1
            tn.count("dup_penalty_duplicates")
            return
        end
        s.firsts = s.firsts + 1
        remember(id)
        forward(m, from)
    end,
}

local function originate()
    me_seq = me_seq + 1
    local me = tn.self().name
    remember(me .. "/" .. me_seq)
    forward({ origin = me, seq = me_seq, pad = string.rep("r", 64) }, nil)
    tn.after(ORIGIN_INTERVAL, originate)
end

local function report()
    local names = {}
    for _, p in ipairs(tn.peers()) do names[#names + 1] = name_of(p) end
    table.sort(names)
    relay = M.relay_set(stats, names, rule_on)
    local parts, n_relay = {}, 0
    for _, name in ipairs(names) do
        local s = stats[name] or { firsts = 0, dups = 0 }
        local total = s.firsts + s.dups
        parts[#parts + 1] = string.format("%s=%.2f", name, total > 0 and s.firsts / total or 1)
        if relay[name] then n_relay = n_relay + 1 end
    end
    tn.log("info", "dup_penalty: rule=%s relay_to=%d/%d scores %s", rule_on and "on" or "off", n_relay,
        #names, table.concat(parts, " "))
    tn.after(REPORT_INTERVAL, report)
end

tn.after(ORIGIN_INTERVAL, originate)
tn.after(REPORT_INTERVAL, report)

return M
