-- Misbehaviour verdicts (seed §12 IP Blacklisting, §13 Rate Limiting, with DESIGN.md
-- "Defaults": bans escalate for repeat offenders; a version or handshake problem alone never
-- earns more than a temporary ban).
--
--   on_misbehavior(peer, kind, detail, strikes) -> "ignore" | "disconnect" | "ban", seconds
--
-- kind is one the core reports: "magic" (wrong network magic), "version" (incompatible
-- protocol), "handshake" (failed key exchange or an inbound handshake timeout), "frame"
-- (invalid frame on an open session), "message" (invalid message), "connections" (connection
-- attempts from one IP beyond connection_attempts_free in a window, see README.md, "§12 and
-- §13") and "flood" (a peer's message class over its rate limit; the excess was dropped).
-- The core's own count (the 4th argument) never decays; this policy keeps its own strikes
-- per IP in persistent state (they survive reloads and restarts) and forgives them slowly.
local M = {}

-- Config keys (tn.config), read once per load -------------------------------------------
local STRIKE_LIMIT = tn.config.strike_limit   -- seed §12: "Wrong protocol magic bytes (3 strikes)",
                                              --           "Invalid messages (3 strikes)"
local BAN_TEMPORARY = tn.config.ban_temporary -- seed §12: "Ban duration: 5 minutes (temporary)"
local BAN_LONG = tn.config.ban_long           -- seed §12: "24 hours (persistent)"
local CONNECTION_WINDOW_S = tn.config.connection_attempt_window -- seed §12 ">5/minute",
                                              --           §13 "per IP per minute"
local CONNECTIONS_FREE = tn.config.connection_attempts_free -- seed §12: more than 5 attempts
                                              --           a minute is a violation
local CONNECTIONS_MAX = tn.config.connection_attempts_max   -- seed §13: "10 connection
                                              --           attempts per IP per minute"

-- Other numbers ----------------------------------------------------------------------------
local BAN_ESCALATION = 12          -- DESIGN.md "escalate with repeat offences": each ban 12× the
                                   -- last, capped at BAN_LONG: 5 min, 1 h, 12 h, 24 h
local STRIKE_DECAY_S = 600         -- DESIGN.md "decaying after quiet": one strike forgiven per
                                   -- 10 quiet minutes (twice the seed §12 temporary ban)
local OFFENCE_MEMORY_MIN_S = 7 * 86400 -- how long a banned IP counts as a repeat offender:
local OFFENCE_MEMORY_S = math.max(OFFENCE_MEMORY_MIN_S, 2 * BAN_LONG) -- a week, and always
                                   -- longer than the seed §12 24 h ban, to escalate past it
local CONNECTION_STRIKES_BAN = math.max(1, CONNECTIONS_MAX - CONNECTIONS_FREE) -- the 10th
                                   -- attempt bans (the core stops reporting after the max)
local FLOOD_WINDOW_S = 60          -- DESIGN.md "Rate limits": limits per minute; flood reports
                                   -- older than this are forgotten
local FLOOD_DISCONNECT = 3         -- the core reports a class at most once a second: a third
                                   -- report in a minute is a flood lasting seconds, not a burst
                                   -- (3 strikes, as seed §12's invalid messages)
local FLOOD_BAN = 6                -- still flooding after a disconnect (reconnected): a ban
local MAX_TRACKED_IPS = 2048       -- bound of the state (policy_state_max is 1 MiB by default)

-- What counts together: the seed's "invalid messages" are bad frames and bad messages.
local CLASS = { magic = "magic", frame = "invalid", message = "invalid", handshake = "handshake" }

function M.new_state()
    return { ips = {}, n = 0 }
end

local state = tn.persist("bans", 1, M.new_state)

-- Drops the entries nobody needs: forgotten ones first, then the least recently seen IP
-- that is not a repeat offender, then the least recently seen of all.
local function make_room(st, now)
    for ip, e in pairs(st.ips) do
        if now - e.seen >= OFFENCE_MEMORY_S then
            st.ips[ip] = nil
            st.n = st.n - 1
        end
    end
    while st.n >= MAX_TRACKED_IPS do
        local victim, vkey
        for ip, e in pairs(st.ips) do
            local key = (e.offences > 0 and 1 or 0) * 1e15 + e.seen
            if not vkey or key < vkey or (key == vkey and ip < victim) then victim, vkey = ip, key end
        end
        st.ips[victim] = nil
        st.n = st.n - 1
    end
end

-- The IP's entry with strikes decayed and old offences forgotten as of `now`.
local function entry(st, ip, now)
    local e = st.ips[ip]
    if e and now - e.seen >= OFFENCE_MEMORY_S then
        st.ips[ip] = nil -- quiet for so long that nothing about it matters any more
        st.n = st.n - 1
        e = nil
    end
    if not e then
        if st.n >= MAX_TRACKED_IPS then make_room(st, now) end
        e = { strikes = {}, last = now, offences = 0, offence_at = 0, banned_until = 0, seen = now }
        st.ips[ip] = e
        st.n = st.n + 1
    end
    local quiet = now - e.last
    if quiet >= STRIKE_DECAY_S then
        local forgive = math.floor(quiet / STRIKE_DECAY_S)
        for class, n in pairs(e.strikes) do
            e.strikes[class] = n > forgive and n - forgive or nil
        end
        e.last = e.last + forgive * STRIKE_DECAY_S
    end
    if e.offences > 0 and now - e.offence_at >= OFFENCE_MEMORY_S then e.offences = 0 end
    e.seen = now
    return e
end

-- A ban that counts as an offence: the first is BAN_TEMPORARY, each repeat longer.
local function offence_ban(e, now)
    if now < e.banned_until then
        return "ban", e.banned_until - now, e.offences -- the same incident, still banned
    end
    e.offences = e.offences + 1
    e.offence_at = now
    local s = math.min(BAN_TEMPORARY * BAN_ESCALATION ^ (e.offences - 1), BAN_LONG)
    e.banned_until = now + s
    return "ban", s, e.offences
end

-- §12 and §13 together: attempts 1-5 in a minute are fine (never reported); the core reports
-- each one beyond that as kind "connections". Reports 1-4 (attempts 6-9) are refused with a
-- strike; the 5th (the 10th attempt, §13's limit) earns a ban like any other offence, after
-- which the core refuses the IP at accept without any work.
local function connections(e, now)
    local kept = {}
    for _, t in ipairs(e.conn or {}) do
        if now - t < CONNECTION_WINDOW_S then kept[#kept + 1] = t end
    end
    kept[#kept + 1] = now
    if #kept >= CONNECTION_STRIKES_BAN then
        e.conn = nil
        return offence_ban(e, now)
    end
    e.conn = kept
    return "disconnect"
end

-- Rate limits (DESIGN.md "Rate limits"): the core dropped what was over a class's bucket and
-- reports it at most once a second per session. Reports 1-2 in a minute are ignored (an
-- honest peer's burst: the excess is gone, the session stays), 3-5 disconnect, the 6th (a
-- peer that reconnected and went on) bans like any other offence.
local function flood(e, now)
    local kept = {}
    for _, t in ipairs(e.flood or {}) do
        if now - t < FLOOD_WINDOW_S then kept[#kept + 1] = t end
    end
    kept[#kept + 1] = now
    if #kept >= FLOOD_BAN then
        e.flood = nil
        return offence_ban(e, now)
    end
    e.flood = kept
    if #kept >= FLOOD_DISCONNECT then return "disconnect" end
    return "ignore"
end

-- The verdict for one event from ip at time now (seconds), given the state table st.
-- Returns action, ban seconds (when "ban"), and the IP's offence count.
function M.judge(st, ip, kind, now)
    if kind == "version" then return "disconnect" end -- seed §11: reject; never a strike or ban
    local e = entry(st, ip, now)
    if kind == "connections" then return connections(e, now) end
    if kind == "flood" then return flood(e, now) end
    local class = CLASS[kind] or kind -- kinds added later count on their own
    local n = (e.strikes[class] or 0) + 1
    e.last = now
    if n < STRIKE_LIMIT then
        e.strikes[class] = n
        if kind == "message" then return "ignore" end -- the message is dropped, the session stays
        return "disconnect"
    end
    e.strikes[class] = nil -- the ban settles these strikes
    if class == "handshake" then
        return "ban", BAN_TEMPORARY, e.offences -- never longer, never an offence (DESIGN.md)
    end
    return offence_ban(e, now)
end

function M.on_misbehavior(peer, kind, detail, strikes) -- luacheck: no unused args
    local action, seconds, offences = M.judge(state, peer.ip or "?", kind, tn.time())
    if action == "ban" and offences and offences > 1 then tn.count("bans_escalated") end
    return action, seconds
end

-- check() instead of assert(): a failure names this file and line, which the node reports.
local function check(ok, what)
    if not ok then error(what or "check failed", 2) end
end

-- Self-tests: each on a fresh state table, never the persistent one ----------------------
local T0 = 1.7e9

local function run(st, ip, kind, times, now)
    local a, s
    for _ = 1, times do a, s = M.judge(st, ip, kind, now) end
    return a, s
end

M.tests = {
    magic_bans_at_the_limit = function()
        local st = M.new_state()
        if STRIKE_LIMIT > 1 then
            check(run(st, "10.0.0.1", "magic", STRIKE_LIMIT - 1, T0) == "disconnect")
        end
        local a, s = M.judge(st, "10.0.0.1", "magic", T0)
        check(a == "ban" and s == math.min(BAN_TEMPORARY, BAN_LONG), "first ban is temporary")
    end,
    repeat_offender_escalates_to_ban_long = function()
        local st = M.new_state()
        local now, last = T0, 0
        for _ = 1, 8 do
            local a, s = run(st, "10.0.0.2", "message", STRIKE_LIMIT, now)
            check(a == "ban" and s >= last and s <= BAN_LONG, "bans grow up to ban_long")
            last = s
            now = now + s + 1
        end
        check(last == BAN_LONG, "a persistent offender reaches ban_long")
    end,
    version_and_handshake_stay_mild = function()
        local st = M.new_state()
        for i = 1, 10 * STRIKE_LIMIT do
            check(M.judge(st, "10.0.0.3", "version", T0 + i) == "disconnect", "version: disconnect only")
        end
        for i = 1, 10 * STRIKE_LIMIT do
            local a, s = M.judge(st, "10.0.0.4", "handshake", T0 + i * 1000)
            check(a ~= "ban" or s == BAN_TEMPORARY, "handshake: a temporary ban at most")
        end
    end,
    strikes_decay_after_quiet = function()
        if STRIKE_LIMIT < 2 then return end
        local st = M.new_state()
        run(st, "10.0.0.5", "magic", STRIKE_LIMIT - 1, T0)
        local a = M.judge(st, "10.0.0.5", "magic", T0 + (STRIKE_LIMIT - 1) * STRIKE_DECAY_S)
        check(a == "disconnect", "strikes forgiven after a quiet period")
    end,
    connection_flood = function()
        local st = M.new_state()
        for i = 1, CONNECTION_STRIKES_BAN - 1 do
            check(M.judge(st, "10.0.0.6", "connections", T0 + i) == "disconnect")
        end
        check(M.judge(st, "10.0.0.6", "connections", T0 + CONNECTION_STRIKES_BAN) == "ban")
        if CONNECTION_STRIKES_BAN < 2 then return end -- every report bans: nothing to spread
        -- the same number of reports spread over more than a minute each is never a ban
        for i = 1, 3 * CONNECTION_STRIKES_BAN do
            check(M.judge(st, "10.0.0.7", "connections", T0 + i * CONNECTION_WINDOW_S) == "disconnect")
        end
    end,
    flood_bursts_are_tolerated_floods_are_not = function()
        local st = M.new_state()
        for i = 1, FLOOD_DISCONNECT - 1 do
            check(M.judge(st, "10.0.0.8", "flood", T0 + i) == "ignore", "a burst is ignored")
        end
        for i = FLOOD_DISCONNECT, FLOOD_BAN - 1 do
            check(M.judge(st, "10.0.0.8", "flood", T0 + i) == "disconnect", "a flood disconnects")
        end
        local a, s = M.judge(st, "10.0.0.8", "flood", T0 + FLOOD_BAN)
        check(a == "ban" and s == math.min(BAN_TEMPORARY, BAN_LONG), "a flood that goes on bans")
        -- one report a minute, for ever, is a peer at its limit: never more than ignored
        for i = 1, 3 * FLOOD_BAN do
            check(M.judge(st, "10.0.0.9", "flood", T0 + i * FLOOD_WINDOW_S) == "ignore")
        end
    end,
    state_is_bounded = function()
        local st = M.new_state()
        for i = 1, MAX_TRACKED_IPS + 10 do M.judge(st, "ip" .. i, "frame", T0 + i) end
        check(st.n == MAX_TRACKED_IPS, "tracked IPs bounded")
    end,
}

return M
