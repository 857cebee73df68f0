-- Latency probe (a protocol experiment written only in Lua): every node sends a timestamped
-- `probe` message to each peer every PROBE_INTERVAL; the peer echoes it at once; the sender
-- keeps the round trip of the last SAMPLES probes per peer and logs its row of the RTT map
-- every REPORT_INTERVAL:
--
--   Policy: latency_probe: rtt_map n1 n2=80.4 n3=79.9 (ms, median of 5)
--
-- The rows of all nodes form the N x (N-1) map (full-mesh topologies; the demo prints it).
-- The timestamp is the sender's monotonic clock (tn.now) carried in the message and echoed
-- back, so no clock sync between nodes is needed. Enabled by the feature flag
-- `latency_probe` (config `features`); a node without it ignores `probe` messages.
local FEATURE = "latency_probe"
local PROBE_ID = 0x8101 -- in the experiment range 0x8000-0xFFFF
local PROBE_INTERVAL = 0.25 -- seconds between probe rounds
local REPORT_INTERVAL = 1 -- seconds between rtt_map log lines
local SAMPLES = 5 -- round trips kept per peer (the map shows their median)

local M = {}

local function median(list)
    local s = {}
    for i, v in ipairs(list) do s[i] = v end
    table.sort(s)
    local n = #s
    if n == 0 then return nil end
    if n % 2 == 1 then return s[(n + 1) // 2] end
    return (s[n // 2] + s[n // 2 + 1]) / 2
end
M.median = median

-- Appends a sample to a bounded list (pure: returns the list).
local function push(list, v, max)
    list[#list + 1] = v
    while #list > max do table.remove(list, 1) end
    return list
end
M.push = push

-- One row of the map: "name a=1.0 b=2.0" with peers in name order.
local function row(self_name, rtts)
    local names = {}
    for name in pairs(rtts) do names[#names + 1] = name end
    table.sort(names)
    local parts = { self_name }
    for _, name in ipairs(names) do
        local m = median(rtts[name])
        if m then parts[#parts + 1] = string.format("%s=%.1f", name, m * 1000) end
    end
    return table.concat(parts, " ")
end
M.row = row

M.tests = {
    median_of_odd_and_even = function()
        if median({ 3, 1, 2 }) ~= 2 or median({ 4, 1, 2, 3 }) ~= 2.5 or median({}) ~= nil then
            error("median", 2)
        end
    end,
    push_keeps_the_last = function()
        local l = push(push(push({}, 1, 2), 2, 2), 3, 2)
        if #l ~= 2 or l[1] ~= 2 or l[2] ~= 3 then error("push", 2) end
    end,
    row_is_sorted_ms = function()
        local r = row("a", { c = { 0.002 }, b = { 0.001, 0.003, 0.002 } })
        if r ~= "a b=2.0 c=2.0" then error("row: " .. r, 2) end
    end,
}

if not tn.feature(FEATURE) then return M end

local rtts = {} -- peer name -> recent round trips (seconds)
local seq = 0

tn.message {
    name = "probe",
    id = PROBE_ID,
    fields = { { "seq", "u32" }, { "t", "f64" }, { "echo", "bool" } },
    class = "control",
    rate = 4 / PROBE_INTERVAL, -- what an honest peer sends, with room to spare
    handler = function(peer, _, m)
        if not m.echo then
            tn.send(peer, "probe", { seq = m.seq, t = m.t, echo = true })
            return
        end
        local name = peer.name or peer.short_id
        rtts[name] = push(rtts[name] or {}, tn.now() - m.t, SAMPLES)
        tn.count("latency_probe_rtts")
    end,
}

local function probe_round()
    seq = (seq + 1) % 0x100000000
    tn.broadcast("probe", { seq = seq, t = tn.now(), echo = false })
    tn.after(PROBE_INTERVAL, probe_round)
end

local function report()
    -- forget peers we have no session with any more
    local live = {}
    for _, p in ipairs(tn.peers()) do live[p.name ~= "" and p.name or p.short_id] = true end
    for name in pairs(rtts) do if not live[name] then rtts[name] = nil end end
    if next(rtts) then
        tn.log("info", "latency_probe: rtt_map %s (ms, median of %d)", row(tn.self().name, rtts),
            SAMPLES)
    end
    tn.after(REPORT_INTERVAL, report)
end

tn.after(PROBE_INTERVAL, probe_round)
tn.after(REPORT_INTERVAL, report)

return M
