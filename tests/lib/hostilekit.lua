-- Hostile-case machinery shared by the adversarial specs: a target node t with an honest real
-- peer h dialing it; a case attacks t and, after it, the kit checks what an operator would
-- notice: t alive, h's session the same one with its pongs still rising, h silent, t's log
-- holding exactly the verdict lines the case expected (one per event) and no other warning,
-- and t's resident memory within its baseline plus the case's budget.
--
--   local K = require("hostilekit")
--   it(K.case("name", { frame_timeout = 1 }, function(c)   -- cfg on top of K.TARGET
--       local p = c:session(1)          -- attacker from block.101 with an open session
--       ...; c:expect("Invalid frame from " .. c:adv_ip(1) .. ": ...")
--   end, { rss_budget_mb = 32 }))       -- K.case returns the name and the test function
--
-- RSS: VmRSS of t (from /proc/PID/status) is sampled before the attack (baseline), by
-- c:sample() during it, and after it; VmHWM (the kernel's peak) must not pass baseline +
-- budget either, so a spike between samples counts. Figures go to stderr, and are appended
-- to $HOSTILE_RSS_LOG when set. Sanitizer builds get a wider budget (ASan's quarantine).
local H = require("harness")
local A = require("advpeer")
local assert = require("luassert") -- busted's assert, as the specs see it
local socket = require("socket")
local T = A.T

local K = { H = H, A = A, T = T }

K.ASAN = (os.getenv("BUILD") or ""):find("asan") ~= nil
-- Default budget per case (cases may set their own): the floods of flood_spec.lua stayed
-- within 4 MB of baseline; 16 leaves room for allocator noise, not for a leak per message.
K.RSS_BUDGET_MB = 16
-- the target runs the shipped attempt limits (seed §12, §13), which the harness lifts for
-- the specs where nodes redial many times a minute
K.TARGET = { heartbeat_interval = 1, strike_limit = 3, connection_attempts_free = 5,
    connection_attempts_max = 10 }

local Ctx = {}
Ctx.__index = Ctx
K.Ctx = Ctx

-- Resident and peak memory of a running node, in kB.
function K.mem(node)
    local f = io.open("/proc/" .. node.pid .. "/status")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return tonumber(s:match("VmRSS:%s*(%d+)")), tonumber(s:match("VmHWM:%s*(%d+)"))
end

function Ctx:sample()
    local rss = K.mem(self.t)
    if rss and rss > self.rss_peak then self.rss_peak = rss end
    return rss
end

function Ctx:adv_ip(i) return string.format("%s.%d", self.net.block, 100 + i) end

-- An attacker connection from source IP block.(100+i), or opts.src (TCP only, nothing sent).
function Ctx:adv(i, opts)
    opts = opts or {}
    opts.src = opts.src or self:adv_ip(i)
    local p = assert(A.connect(self.t.ip, self.port, opts))
    self.cleanups[#self.cleanups + 1] = function() p:close() end
    return p
end

-- An attacker with an open, established session: handshake, hello, the node's hello.
function Ctx:session(i, opts)
    local p = self:adv(i, opts)
    local id, err = p:handshake()
    assert(id, "handshake: " .. tostring(err))
    assert.are.equal(self.t:id(), id)
    assert(p:hello({ name = "adv" .. i }))
    assert(p:wait_msg(T.MSG_HELLO, 5), "the node's hello")
    return p
end

-- A bare TCP socket from src to the target, connected (or nil, err: "closed" when the node
-- reset it before connect() returned, as it does for banned IPs and excess attempts). Kept
-- until cleanup.
function Ctx:tcp(src)
    local s = socket.tcp()
    s:settimeout(5)
    local ok, err = s:bind(src, 0)
    if ok then ok, err = s:connect(self.t.ip, self.port) end
    if not ok then
        s:close()
        return nil, err
    end
    self.cleanups[#self.cleanups + 1] = function() s:close() end
    return s
end

-- Waits until the target logged `text` n times and records it as an expected verdict line.
function Ctx:expect(text, n, timeout)
    n = n or 1
    self.t:wait_log(text, timeout or 10, n)
    self.expected[#self.expected + 1] = { text = text, n = n }
end

-- True when a connection from block.(100+i) is refused at once without a byte: reset before
-- or right after connect() returns (a refusal for what the address did is a reset).
function Ctx:refused_at_once(i)
    local p, err = A.connect(self.t.ip, self.port, { src = self:adv_ip(i), timeout = 2 })
    if not p then return err == "closed" end
    self.cleanups[#self.cleanups + 1] = function() p:close() end
    local t0 = H.now()
    return p:closed(2) and H.now() - t0 < 1 and p.drained == 0
end

-- The attacker whose session survived leaves: the node logs the loss once (closed, or reset
-- when the attacker left unread bytes behind).
function Ctx:hangup(p, i)
    p:close()
    self:expect("Connection to " .. self:adv_ip(i) .. " lost (connection ")
end

function Ctx:metric(name) return self.t:metric(name) end

-- The node closes the connection promptly (not after a timeout of its own or ours).
function K.closes_within(p, seconds)
    local t0 = H.now()
    assert.is_true(p:closed(seconds + 2), "connection still open")
    local dt = H.now() - t0
    assert.is_true(dt < seconds, string.format("closed after %.2f s", dt))
    return dt
end

-- The session still works: a ping gets its pong.
function K.alive(p)
    local rtt, err = p:ping(3)
    assert(rtt, "no pong: " .. tostring(err))
    return rtt
end

-- Events logged at WARN or above since byte `from` of the node's log (folded repeats count
-- as the events they stand for, as in Node:count).
function K.warnings_since(node, from)
    local n = 0
    for line in node:log():sub(from + 1):gmatch("[^\n]+") do
        if line:find(" WARN ", 1, true) or line:find(" ERROR ", 1, true) then
            n = n + (tonumber(line:match("%(repeated (%d+) more times%)$")) or 1)
        end
    end
    return n
end

function K.strikes_of(t, ip)
    for _, row in ipairs(t:ctl("strikes").strikes) do
        if row.ip == ip then return row end
    end
    return {}
end

local function report(name, c, rss_after, hwm_after, budget_mb)
    local line = string.format("RSS %s: baseline %.1f MB, peak %.1f MB, after %.1f MB, VmHWM %.1f MB"
        .. " (budget +%d MB)\n", name, c.rss_base / 1024, c.rss_peak / 1024, rss_after / 1024,
        hwm_after / 1024, budget_mb)
    io.stderr:write(line)
    local path = os.getenv("HOSTILE_RSS_LOG")
    if path then
        local f = io.open(path, "a")
        if f then
            f:write(line)
            f:close()
        end
    end
end

-- A case for busted's it(): target t (cfg on top of K.TARGET) and an honest real peer h
-- dialing it with heartbeat_interval = 1; body(ctx) attacks t. opts.rss_budget_mb: the
-- case's budget. Returns name, function.
function K.case(name, cfg, body, opts)
    opts = opts or {}
    return name, function()
        H.with_net(function(net)
            local tcfg = {}
            for k, v in pairs(K.TARGET) do tcfg[k] = v end
            for k, v in pairs(cfg) do tcfg[k] = v end
            local t = net:node("t", tcfg)
            local h = net:node("h", { heartbeat_interval = 1 })
            h.cfg.persistent_peers = { t:addr() }
            t:start()
            h:start()
            t:wait_connected({ h })
            H.wait(function() return t:peer_row(h).pongs >= 1 end, 5, "a first pong from h")
            local before = t:peer_row(h)
            local rss_base, hwm_base = K.mem(t)
            local ctx = setmetatable({ net = net, t = t, h = h, expected = {}, cleanups = {},
                port = tonumber(t:addr():match(":(%d+)$")), log_start = #t:log(),
                h_log_start = #h:log(), rss_base = rss_base, rss_peak = rss_base }, Ctx)
            local ok, err = xpcall(body, debug.traceback, ctx)
            ctx:sample()
            for _, f in ipairs(ctx.cleanups) do pcall(f) end
            if not ok then error(err, 0) end

            -- the honest peer did not notice
            assert.is_true(t:running(), "target node died")
            local mid = t:peer_row(h)
            assert.is_truthy(mid, "honest session gone")
            assert.are.equal(before.session, mid.session, "honest session replaced")
            H.wait(function()
                local r = t:peer_row(h)
                return r and r.session == before.session and r.pongs > mid.pongs
            end, 5, "honest pongs to keep rising after the case")
            assert.are.equal(0, t:count("Connection to " .. h.ip .. " lost"))
            assert.are.equal(0, K.warnings_since(h, ctx.h_log_start), "honest node warned")
            assert.is_true(h:running(), "honest node died")
            -- one line per verdict, counted again after a heartbeat: nothing came late
            local warns = 0
            for _, e in ipairs(ctx.expected) do
                assert.are.equal(e.n, t:count(e.text), e.text)
                warns = warns + e.n
            end
            assert.are.equal(warns, K.warnings_since(t, ctx.log_start), "warnings besides the verdicts")
            -- memory: baseline plus the case's budget, at every sample and at the kernel's peak
            local budget_mb = (opts.rss_budget_mb or K.RSS_BUDGET_MB) * (K.ASAN and 8 or 1)
            local rss_after, hwm_after = K.mem(t)
            ctx.rss_peak = math.max(ctx.rss_peak, rss_after)
            report(name, ctx, rss_after, hwm_after, budget_mb)
            local limit = rss_base + budget_mb * 1024
            assert.is_true(ctx.rss_peak <= limit, string.format("RSS peak %d kB above %d kB",
                ctx.rss_peak, limit))
            assert.is_true(hwm_after <= math.max(hwm_base, limit), string.format(
                "VmHWM %d kB above %d kB", hwm_after, math.max(hwm_base, limit)))
        end)
    end
end

return K
