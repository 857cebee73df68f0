-- Reconnects (seed §3 Fast Reconnection) and sync failover (seed §20 Automatic Failover).
--
--   reconnect(peer, attempt, reason) -> seconds until the next dial, or false to give up.
--       attempt = consecutive failed dials (0 right after an established session was lost);
--       reason  = what ended the last try ("connection refused", "connection lost", ...).
--       After false the core pauses reconnect_cooldown, then starts over at attempt 0.
--   failover(ctx) -> addr of the next sync peer, or nil (proposed contract, wired by the sync
--       issue; see README.md).
local M = {}

-- Config keys (tn.config), read once per load -------------------------------------------
local DELAY = tn.config.reconnect_delay                -- seed §3: "Initial retry: 5 seconds"
local BACKOFF = tn.config.reconnect_backoff            -- seed §3: 5→10→30→60→300 = DELAY × {1, 2, 6, 12, 60}
local MAX_ATTEMPTS = tn.config.reconnect_max_attempts  -- seed §3: "Give up after 10 consecutive failures"

function M.reconnect(peer, attempt, reason) -- luacheck: no unused args
    if attempt >= MAX_ATTEMPTS then return false end
    if #BACKOFF == 0 then return DELAY end
    -- one multiplier per consecutive failure, the last one repeating (seed §3 "300s (max)")
    return DELAY * BACKOFF[math.min(attempt + 1, #BACKOFF)]
end

-- Failover: the next sync peer ----------------------------------------------------------
-- Among the candidates that are not the peer we lose and are not behind us, the best score
-- wins (seed §20 "immediately try next best peer"); ties go to the higher height, then the
-- lower RTT, then the address (so the answer never depends on the list's order).
local function better(a, b)
    local sa, sb = a.score or 0, b.score or 0
    if sa ~= sb then return sa > sb end
    local ha, hb = a.height or 0, b.height or 0
    if ha ~= hb then return ha > hb end
    local ra, rb = a.rtt_ms or math.huge, b.rtt_ms or math.huge
    if ra ~= rb then return ra < rb end
    return tostring(a.addr) < tostring(b.addr)
end

function M.failover(ctx)
    local best, fallback
    local ours = ctx.height or 0
    for _, c in ipairs(ctx.candidates or {}) do
        if c.addr ~= ctx.current then
            if (c.height or ours) >= ours then
                if not best or better(c, best) then best = c end
            elseif not fallback or better(c, fallback) then
                fallback = c -- behind us: only when nobody else is left
            end
        end
    end
    local pick = best or fallback
    return pick and pick.addr or nil
end

-- check() instead of assert(): a failure names this file and line, which the node reports.
local function check(ok, what)
    if not ok then error(what or "check failed", 2) end
end

-- Self-tests: properties that hold for any reconnect_* config -----------------------------
M.tests = {
    first_retry_is_the_delay = function()
        check(M.reconnect({}, 0, "connection lost") == DELAY * (BACKOFF[1] or 1))
    end,
    backoff_never_shrinks = function()
        local last = 0
        for attempt = 0, MAX_ATTEMPTS - 1 do
            local d = M.reconnect({}, attempt, "connection refused")
            check(type(d) == "number" and d >= 0 and d <= 7 * 86400, "bad delay at " .. attempt)
            check(d >= last, "delay shrinks at attempt " .. attempt)
            last = d
        end
    end,
    gives_up_after_max_attempts = function()
        check(M.reconnect({}, MAX_ATTEMPTS, "connection refused") == false)
        check(M.reconnect({}, MAX_ATTEMPTS + 5, "connection refused") == false)
        check(M.reconnect({}, MAX_ATTEMPTS - 1, "connection refused") ~= false)
    end,
    failover_picks_best_score_not_current = function()
        local ctx = { current = "10.0.0.1:1", height = 100, candidates = {
            { addr = "10.0.0.1:1", score = 99, height = 120 },
            { addr = "10.0.0.2:1", score = 50, height = 120 },
            { addr = "10.0.0.3:1", score = 80, height = 110 },
            { addr = "10.0.0.4:1", score = 95, height = 90 }, -- behind us
        } }
        check(M.failover(ctx) == "10.0.0.3:1")
        ctx.candidates[3] = nil
        ctx.candidates[3] = ctx.candidates[4]
        ctx.candidates[4] = nil
        check(M.failover(ctx) == "10.0.0.2:1")
        check(M.failover({ current = "10.0.0.1:1", height = 5, candidates = {
            { addr = "10.0.0.1:1", score = 9 }, { addr = "10.0.0.9:1", score = 1, height = 1 } } })
            == "10.0.0.9:1", "a peer behind us beats nobody")
        check(M.failover({ candidates = {} }) == nil)
    end,
}

return M
