-- Flood relay (a protocol experiment written only in Lua): an unsigned message type that every
-- node forwards once to each of its other peers. The core frames, encrypts, rate-limits and
-- dedups it (a hash of the payload, checked before the handler runs), so the handler only
-- forwards. No signature, no announce round trip: the unsigned relay path the `net_n20_unsigned`
-- bench measures (tests/bench/netbench.lua), and a template for other broadcast experiments.
-- Enabled by the feature flag `flood` (config `features`).
local FEATURE = "flood"
local FLOOD_ID = 0x8200 -- in the experiment range 0x8000-0xFFFF
-- Messages per second one peer may send us: the bench publishes thousands per second through
-- a few peers; an operator would size this from the experiment's expected rate.
local RATE = 100000

local M = { tests = {} }

function M.tests.id_in_experiment_range()
    if FLOOD_ID < 0x8000 or FLOOD_ID > 0xFFFF then error("id out of range", 2) end
end

if not tn.feature(FEATURE) then return M end

tn.message {
    name = "flood",
    id = FLOOD_ID,
    raw = true,
    class = "data",
    rate = RATE,
    dedup = true,
    handler = function(peer, _, payload)
        tn.broadcast("flood", payload, peer)
    end,
}

return M
