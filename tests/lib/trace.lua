-- Propagation trace analysis: reads the JSON lines nodes write with `trace_file` (c/tn_trace.h)
-- and computes, per object type, delivery and latency percentiles, duplicates and
-- announcements. Used by the demo's end-of-run report and the experiment tests.
--
--   local TR = require("trace")
--   local ev = TR.load({ "n1/trace.jsonl", "n2/trace.jsonl" })
--   local r = TR.analyze(ev, { nodes = { "n1", "n2" }, settle_s = 2 })
--   r.tx.delivery, r.tx.latency_ms.p50, r.block.duplicates, TR.format(r)
local json = require("cjson.safe")

local TR = {}

-- Every event of the given files, sorted by time. Unreadable lines are skipped (a node
-- killed while writing leaves half a line).
function TR.load(paths)
    local out = {}
    for _, path in ipairs(paths) do
        local f = io.open(path, "rb")
        if f then
            for line in f:lines() do
                local e = json.decode(line)
                if type(e) == "table" and e.t then out[#out + 1] = e end
            end
            f:close()
        end
    end
    table.sort(out, function(a, b) return a.t < b.t end)
    return out
end

-- The p-th percentile (0-100) of a list of numbers (nearest rank), nil when empty.
function TR.percentile(list, p)
    if #list == 0 then return nil end
    local s = {}
    for i, v in ipairs(list) do s[i] = v end
    table.sort(s)
    local k = math.max(1, math.min(#s, math.ceil(p / 100 * #s)))
    return s[k]
end

local function stats(list)
    return { n = #list, p50 = TR.percentile(list, 50), p90 = TR.percentile(list, 90),
        p99 = TR.percentile(list, 99), max = TR.percentile(list, 100) }
end

-- opts.nodes: names expected to receive every object (default: every node in the trace);
-- opts.settle_s: objects born in the last settle_s seconds of the trace are left out (they
-- had no time to spread); opts.types: restrict to these types.
-- Per type: objects (born = accepted from "self" somewhere), delivery (fraction of
-- (object, node) pairs accepted), latency_ms (accept at a node - birth, other nodes only),
-- time_to_all_ms (per object, until the last expected node had it), duplicates (bodies or
-- messages received again), received, announced.
function TR.analyze(events, opts)
    opts = opts or {}
    local nodes = opts.nodes
    if not nodes then
        local seen = {}
        nodes = {}
        for _, e in ipairs(events) do
            if not seen[e.node] then
                seen[e.node] = true
                nodes[#nodes + 1] = e.node
            end
        end
    end
    local last_t = #events > 0 and events[#events].t or 0
    local cutoff = last_t - (opts.settle_s or 0) * 1e6
    local by = {}
    local function T(name)
        if not by[name] then
            by[name] = { born = {}, origin = {}, got = {}, recvd = {}, duplicates = 0, received = 0,
                announced = 0, sent = 0 }
        end
        return by[name]
    end
    for _, e in ipairs(events) do
        if not opts.types or opts.types[e.type] then
            local t = T(e.type)
            if e.ev == "accept" then
                if e.from == "self" and not t.born[e.id] then
                    t.born[e.id] = e.t
                    t.origin[e.id] = e.node
                end
                t.got[e.id] = t.got[e.id] or {}
                t.got[e.id][e.node] = t.got[e.id][e.node] or e.t
            elseif e.ev == "recv" then
                t.received = t.received + 1
                -- a duplicate: the node had received this object before (dropped by dedup
                -- or not: a Lua type without dedup reaches its handler every time)
                local k = e.id .. e.node
                if t.recvd[k] then t.duplicates = t.duplicates + 1 end
                t.recvd[k] = true
                -- experiment messages have no "accept": the first accepted recv is delivery
                if e.outcome == "accepted" and e.type ~= "tx" and e.type ~= "block" then
                    t.got[e.id] = t.got[e.id] or {}
                    t.got[e.id][e.node] = t.got[e.id][e.node] or e.t
                end
            elseif e.ev == "announce" then
                t.announced = t.announced + 1
            elseif e.ev == "send" then
                t.sent = t.sent + 1
                if not t.born[e.id] then
                    t.born[e.id] = e.t
                    t.origin[e.id] = e.node
                end
            end
        end
    end
    local out = {}
    for name, t in pairs(by) do
        local lat, all, pairs_ok, pairs_n, objects = {}, {}, 0, 0, 0
        for id, born in pairs(t.born) do
            if born <= cutoff then
                objects = objects + 1
                local got = t.got[id] or {}
                local worst, complete = 0, true
                for _, node in ipairs(nodes) do
                    if node ~= t.origin[id] then
                        pairs_n = pairs_n + 1
                        local at = got[node]
                        if at then
                            pairs_ok = pairs_ok + 1
                            local ms = (at - born) / 1000
                            lat[#lat + 1] = ms
                            if ms > worst then worst = ms end
                        else
                            complete = false
                        end
                    end
                end
                if complete then all[#all + 1] = worst end
            end
        end
        out[name] = { objects = objects, delivery = pairs_n > 0 and pairs_ok / pairs_n or nil,
            latency_ms = stats(lat), time_to_all_ms = stats(all), duplicates = t.duplicates,
            received = t.received, announced = t.announced, sent = t.sent }
    end
    return out
end

local function ms(v) return v and string.format("%.1f", v) or "-" end

-- A table for people: one row per type.
function TR.format(r)
    local names = {}
    for name in pairs(r) do names[#names + 1] = name end
    table.sort(names)
    local lines = { string.format("%-10s %7s %9s %8s %8s %8s %8s %10s %9s", "type", "objects",
        "delivery", "p50 ms", "p90 ms", "p99 ms", "max ms", "duplicates", "announced") }
    for _, name in ipairs(names) do
        local x = r[name]
        lines[#lines + 1] = string.format("%-10s %7d %8s%% %8s %8s %8s %8s %10d %9d", name,
            x.objects, x.delivery and string.format("%.1f", x.delivery * 100) or "-",
            ms(x.latency_ms.p50), ms(x.latency_ms.p90), ms(x.latency_ms.p99), ms(x.latency_ms.max),
            x.duplicates, x.announced)
    end
    return table.concat(lines, "\n")
end

return TR
