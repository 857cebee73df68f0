-- Peer quality (seed §9 Peer Quality Tracking) and heartbeat verdicts (seed §22 Health
-- Checks, with DESIGN.md "Defaults": a late pong never closes, consecutive misses do).
--
--   score(peer)         -> number in [0, 100], higher is better; the core keeps it on the
--                          session (peers verb, eviction, failover) and calls this every
--                          policy_tick_interval.
--   health(peer, event) -> "tolerate" | "close", after a late ("late") or missed ("missed") pong.
--
-- Pure functions of the peer's fields: the same peer always gets the same answer.
local M = {}

-- Config keys (tn.config), read once per load -------------------------------------------
local MISSED_PONGS_CLOSE = tn.config.missed_pongs_close -- seed §22: "close ... if 3 pings timeout"
local PONG_DEADLINE_MS = tn.config.pong_deadline * 1000 -- seed §22: "expect pong within 5 s"

-- Weights of the seed §9 metrics; the five terms add up to 90 points ---------------------
local W_SUCCESS = 15 -- §9 "Connection success rate": sessions / (sessions + disconnects)
local W_UPTIME = 20  -- §9 "Uptime percentage": time connected, saturating at UPTIME_FULL_S
local W_RTT = 20     -- §9 "Response time": smoothed ping round trip
local W_PONGS = 25   -- §22 health: share of pings answered in time (late and missed pongs)
local W_SYNC = 10    -- §9 "Block sync speed": an announced chain, and blocks it gave us
local MASTERNODE_BONUS = 10     -- §23 Masternode Peer Priority: the last 10 points
local DISCONNECT_PENALTY = 2    -- §9 "Number of disconnections": points per disconnect...
local DISCONNECT_PENALTY_MAX = 10 -- ...at most this many points
local INVALID_PENALTY = 2       -- §12 "invalid messages": points per invalid object it sent...
local INVALID_PENALTY_MAX = 10  -- ...at most this many points
local SCORE_MAX = 100
-- Shapes of the terms --------------------------------------------------------------------
local UPTIME_FULL_S = 3600 -- §2 Persistent Connections: an hour connected earns the whole term
local RTT_GOOD_MS = 50     -- §9 Response time: at or below this the RTT term is full
local RTT_UNKNOWN = 0.5    -- RTT term of a peer with no pong yet: neither good nor bad
local LATE_COST = 0.5      -- DESIGN.md: a late pong lowers the score, half as much as a miss
local MISSED_COST = 1      -- a missed pong costs a whole answered ping
local SYNC_UNKNOWN = 0.5   -- no hello (no height) yet
local SYNC_CHAIN = 0.75    -- it announced a chain...
local SYNC_BLOCKS_FULL = 100 -- ...and the rest of the term as it gives us blocks, full at 100

local RTT_SPAN_MS = math.max(PONG_DEADLINE_MS - RTT_GOOD_MS, 1) -- RTT term falls to 0 at the deadline

local function clamp01(x)
    if x < 0 then return 0 elseif x > 1 then return 1 end
    return x
end

-- The peer's fields cover this session (pings, late, rtt_ms, connected_s ...) and, through
-- the core's quality record, its whole history with this node across restarts
-- (success_rate, uptime_share, rtt_avg_ms, pings_total, late_total, missed_total, blocks,
-- invalid): the history counts as soon as a session starts, so a good old peer that just
-- reconnected is not treated like a stranger.
function M.score(peer)
    local sessions, disconnects = peer.sessions or 0, peer.disconnects or 0
    local success = peer.success_rate or 1 -- §9 "Connection success rate": dials that worked
    if sessions + disconnects > 0 then success = success * sessions / (sessions + disconnects) end

    -- §9 "Uptime percentage": this session, or the share of time connected since first seen
    local uptime = math.max(clamp01((peer.connected_s or 0) / UPTIME_FULL_S),
        clamp01(peer.uptime_share or 0))

    local rtt_term = RTT_UNKNOWN
    local pongs, rtt = peer.pongs or 0, peer.rtt_ms or 0
    if pongs <= 0 and (peer.rtt_avg_ms or 0) > 0 then pongs, rtt = 1, peer.rtt_avg_ms end
    if pongs > 0 then
        rtt_term = 1 - clamp01((rtt - RTT_GOOD_MS) / RTT_SPAN_MS)
    end

    local pongs_term = 1
    -- the totals include this session; a peer without history (plain tables) has only these
    local pings, late, missed = peer.pings_total or 0, peer.late_total or 0, peer.missed_total or 0
    if pings <= 0 then pings, late, missed = peer.pings or 0, peer.late or 0, peer.missed or 0 end
    if pings > 0 then
        local bad = late * LATE_COST + missed * MISSED_COST
        pongs_term = 1 - clamp01(bad / pings)
    end

    local sync = SYNC_UNKNOWN
    if (peer.height or 0) > 0 then
        sync = SYNC_CHAIN + (1 - SYNC_CHAIN) * clamp01((peer.blocks or 0) / SYNC_BLOCKS_FULL)
    end

    local s = W_SUCCESS * success + W_UPTIME * uptime + W_RTT * rtt_term + W_PONGS * pongs_term
        + W_SYNC * sync
    if peer.masternode then s = s + MASTERNODE_BONUS end
    s = s - math.min(DISCONNECT_PENALTY_MAX, DISCONNECT_PENALTY * disconnects)
    s = s - math.min(INVALID_PENALTY_MAX, INVALID_PENALTY * (peer.invalid or 0))
    if s < 0 then return 0 elseif s > SCORE_MAX then return SCORE_MAX end
    return s
end

function M.health(peer, event)
    if event == "missed" and (peer.missed_run or 0) >= MISSED_PONGS_CLOSE then return "close" end
    return "tolerate" -- "late" never closes (DESIGN.md: it dropped healthy masternodes)
end

-- check() instead of assert(): a failure names this file and line, which the node reports.
local function check(ok, what)
    if not ok then error(what or "check failed", 2) end
end

-- Self-tests: run at every load; a failure rejects the whole generation ------------------
local function peer(fields)
    local p = { sessions = 1, disconnects = 0, connected_s = 600, pings = 20, pongs = 20, late = 0,
        missed = 0, missed_run = 0, rtt_ms = 40, height = 10, masternode = false }
    for k, v in pairs(fields or {}) do p[k] = v end
    return p
end

M.tests = {
    score_in_range = function()
        for _, p in ipairs({ peer(), peer({ masternode = true, connected_s = 1e9 }),
            peer({ disconnects = 1e6, missed = 1e6, late = 1e6, rtt_ms = 1e9 }), {} }) do
            local s = M.score(p)
            check(s >= 0 and s <= SCORE_MAX, "score out of range: " .. s)
        end
    end,
    better_peer_scores_higher = function()
        local good = M.score(peer())
        check(M.score(peer({ rtt_ms = 2000 })) < good, "slow RTT must cost")
        check(M.score(peer({ late = 5 })) < good, "late pongs must cost")
        check(M.score(peer({ missed = 5 })) < M.score(peer({ late = 5 })), "a miss costs more")
        check(M.score(peer({ sessions = 5, disconnects = 4 })) < good, "disconnects must cost")
        check(M.score(peer({ connected_s = 5 })) < good, "uptime must count")
        check(M.score(peer({ masternode = true })) > good, "masternodes get a bonus")
        check(M.score(peer({ success_rate = 0.5 })) < good, "failed dials must cost")
        check(M.score(peer({ invalid = 3 })) < good, "invalid objects must cost")
        check(M.score(peer({ connected_s = 5, uptime_share = 0.9 })) > M.score(peer({
            connected_s = 5 })), "a long record of uptime counts after a reconnect")
    end,
    late_never_closes = function()
        check(M.health(peer({ late = 100, missed_run = 0 }), "late") == "tolerate")
        check(M.health(peer({ late = 100, missed_run = MISSED_PONGS_CLOSE + 5 }), "late") == "tolerate")
    end,
    misses_close_at_the_limit = function()
        check(M.health(peer({ missed_run = MISSED_PONGS_CLOSE - 1 }), "missed") == "tolerate")
        check(M.health(peer({ missed_run = MISSED_PONGS_CLOSE }), "missed") == "close")
    end,
}

return M
