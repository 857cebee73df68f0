-- Relay experiment: announce-then-fetch versus push for large blocks, side by side on the same
-- links. Every node originates a BLOCK_SIZE-byte pseudo-block every ORIGIN_INTERVAL,
-- alternating the strategy:
--   push  - the whole body goes to every peer; each node forwards it on first sight to every
--           peer but the sender (core dedup drops the copies that arrive twice);
--   fetch - a 4-byte-id announcement (`blk_ann`) goes to every peer; a node that lacks the
--           block asks the first announcer (`blk_get`) and gets the body (`blk_body`), then
--           announces it in turn (what the core relay does for blocks, here in Lua).
-- Each node counts the bytes it sent per strategy (message payloads) and the delay from
-- origin to its own first copy (origin wall clock carried in the message; the nodes of a
-- demo share one clock), and logs, every REPORT_INTERVAL:
--
--   Policy: relay_compare: push bytes=1048576 got=8 p50=21.3; fetch bytes=524712 got=8 p50=62.0
--
-- Honest limits: both strategies are Lua emulations over the experiment message path (the
-- core relay's own block path is C and faster); fetch asks one announcer and has no
-- timeout/retry (the core does), so under loss or kills it under-delivers where the core
-- would not. Enabled by the feature flag `relay_compare`.
local FEATURE = "relay_compare"
local BLOCK_SIZE = 128 * 1024
local ORIGIN_INTERVAL = 1
local REPORT_INTERVAL = 1
local KEEP = 16 -- bodies kept to answer requests
local LAT_KEEP = 200 -- latencies kept per strategy

local M = {}

local function median(list)
    if #list == 0 then return nil end
    local s = {}
    for i, v in ipairs(list) do s[i] = v end
    table.sort(s)
    return s[(#s + 1) // 2]
end
M.median = median

M.tests = {
    median_picks_the_middle = function()
        if median({ 5, 1, 3 }) ~= 3 or median({}) ~= nil then error("median", 2) end
    end,
}

if not tn.feature(FEATURE) then return M end

local have, order = {}, {} -- id -> {t0, data}; ids in arrival order (bounded)
local asked = {} -- id -> true once requested
local sent = { push = 0, fetch = 0 }
local got = { push = 0, fetch = 0 }
local lat = { push = {}, fetch = {} }
local seq = 0

local function keep(id, t0, data)
    have[id] = { t0 = t0, data = data }
    order[#order + 1] = id
    if #order > KEEP then
        have[table.remove(order, 1)] = nil
    end
end

local function arrived(kind, t0)
    got[kind] = got[kind] + 1
    local l = lat[kind]
    l[#l + 1] = (tn.time() - t0) * 1000
    if #l > LAT_KEEP then table.remove(l, 1) end
end

local function to_all(name, msg, except, bytes)
    local n = tn.broadcast(name, msg, except)
    return n * bytes
end

tn.message {
    name = "push_block", id = 0x8110, class = "bulk", rate = 50, dedup = true,
    fields = { { "id", "bytes" }, { "t0", "f64" }, { "data", "bytes" } },
    handler = function(peer, _, m)
        -- core dedup let only the first copy through
        arrived("push", m.t0)
        sent.push = sent.push + to_all("push_block", m, peer, #m.data + #m.id + 16)
    end,
}

tn.message {
    name = "blk_ann", id = 0x8111, class = "data", rate = 200,
    fields = { { "id", "bytes" } },
    handler = function(peer, _, m)
        if have[m.id] or asked[m.id] then return end
        asked[m.id] = true
        if tn.send(peer, "blk_get", { id = m.id }) then sent.fetch = sent.fetch + #m.id + 4 end
    end,
}

tn.message {
    name = "blk_get", id = 0x8112, class = "data", rate = 200,
    fields = { { "id", "bytes" } },
    handler = function(peer, _, m)
        local b = have[m.id]
        if b and tn.send(peer, "blk_body", { id = m.id, t0 = b.t0, data = b.data }) then
            sent.fetch = sent.fetch + #b.data + #m.id + 16
        end
    end,
}

tn.message {
    name = "blk_body", id = 0x8113, class = "bulk", rate = 50,
    fields = { { "id", "bytes" }, { "t0", "f64" }, { "data", "bytes" } },
    handler = function(peer, _, m)
        if have[m.id] then return end
        keep(m.id, m.t0, m.data)
        arrived("fetch", m.t0)
        sent.fetch = sent.fetch + to_all("blk_ann", { id = m.id }, peer, #m.id + 4)
    end,
}

local function originate()
    seq = seq + 1
    local me = tn.self().name
    local id = string.format("%s/%d", me, seq)
    local t0 = tn.time()
    local data = string.rep(string.char(65 + seq % 26), BLOCK_SIZE - #id) .. id -- unique body
    if seq % 2 == 1 then
        sent.push = sent.push + to_all("push_block", { id = id, t0 = t0, data = data }, nil, #data + #id + 16)
    else
        keep(id, t0, data)
        sent.fetch = sent.fetch + to_all("blk_ann", { id = id }, nil, #id + 4)
    end
    tn.after(ORIGIN_INTERVAL, originate)
end

local function report()
    local function p50(kind)
        local m = median(lat[kind])
        return m and string.format("%.1f", m) or "-"
    end
    tn.log("info", "relay_compare: push bytes=%d got=%d p50=%s; fetch bytes=%d got=%d p50=%s",
        sent.push, got.push, p50("push"), sent.fetch, got.fetch, p50("fetch"))
    tn.after(REPORT_INTERVAL, report)
end

tn.after(ORIGIN_INTERVAL, originate)
tn.after(REPORT_INTERVAL, report)

return M
