-- The policy test kit: unit-test a policy directory offline with plain lua5.4, no node.
--
--   local kit = require("policykit")
--   local pol = kit.load("policies", { config = { reconnect_delay = 0.2 } })
--   local p = kit.peer({ ip = "10.0.0.7" })
--   pol:decide("reconnect", p, 0, "connection lost")   --> 0.2  (what the node would do)
--   kit.misbehave(pol, p, "magic", 3)                   --> { {"disconnect",0}, ..., {"ban",300} }
--   pol:reload()                                        -- new generation, persistent state kept
--   kit.replay("decisions.jsonl", "my-policies")        --> decisions that would change
--
-- The loader mimics the node's (c/tn_policy_gen.c): every top-level *.lua in its own
-- environment must return a table; functions named like hook slots become hooks (one file per
-- hook); each module's `tests` run at load and a failure rejects the whole directory with the
-- node's "file:line: message (self-test NAME failed)". The sandbox has the node's libraries
-- and guards (pattern worst case, string.rep, __gc, load of text only, a CPU budget that
-- pcall cannot swallow). The `tn` table is a fake: log capture, config from the node's
-- defaults (`timenetd --print-config`) plus overrides, a clock you move, tn.persist in memory
-- with reload/restart, tn.after timers that run when you advance the clock, counters, tags.
-- Differences from the node: no memory cap; budgets are looser (the kit catches runaway
-- code, `timenetd --check-policy` enforces the real limits); the peer object is a read-only
-- table proxy instead of a userdata.
--
-- CLI:  lua5.4 tests/lib/policykit.lua replay RECORDING POLICY_DIR [NODE_CONFIG]
--       lua5.4 tests/lib/policykit.lua check POLICY_DIR [NODE_CONFIG]
local json = require("dkjson")

local K = {}

K.HOOKS = { "score", "reconnect", "on_misbehavior", "health", "on_tick", "discovery_order",
    "rank_candidates", "failover", "evict", "schedule", "on_message" }

-- Limits the node enforces (c/tn_policy_int.h), mirrored so a policy fails here first.
local FILES_MAX = 64
local PERSIST_MAX = 32
local TIMERS_MAX = 64
local PATTERN_STEPS = 1e7
local STRING_MAX = 1 << 20
local TAG_MAX = 32
local STATE_DEPTH_MAX = 32
local HOOK_EVERY = 1000 -- VM instructions between budget checks
local TIMER_RUNS_MAX = 100000 -- timers run by one advance() (a timer re-arming at 0 s loops)
local MAX_DELAY_S = 7 * 86400
local MAX_BAN_S = 10 * 365 * 86400
local PROTOCOL_VERSION = 1 -- TN_PROTO_VERSION (c/tn_proto.h)
-- The kit's budgets: generous multiples of the node's, to catch runaway code, not to time it.
local BUDGET_FACTOR = 20
local BUDGET_MIN_S = 0.25
local LOAD_BUDGET_MIN_S = 5
-- Replay: the recording rounds rtt_ms to microseconds, so scores may differ in far decimals.
local SCORE_TOLERANCE = 1e-3

local LEVELS = { debug = true, info = true, warn = true, error = true }

-- The peer object's fields (c/tn_policy_api.c), in the node's order.
K.PEER_FIELDS = { "addr", "ip", "port", "id", "short_id", "name", "dir", "outbound", "masternode",
    "connected_s", "rtt_ms", "pings", "pongs", "late", "missed", "missed_run", "bytes_in",
    "bytes_out", "msgs_in", "msgs_out", "sessions", "disconnects", "strikes", "score", "tag",
    "height", "connected", "success_rate", "uptime_share", "rtt_avg_ms", "pings_total",
    "late_total", "missed_total", "blocks", "dups", "invalid", "disconnects_total" }

---------------------------------------------------------------------------- small helpers

local function here_dir()
    local src = debug.getinfo(1, "S").source
    local path = src:sub(1, 1) == "@" and src:sub(2) or "tests/lib/policykit.lua"
    return path:match("^(.*)/[^/]*$") or "."
end
local REPO = here_dir() .. "/../.."

local function read_file(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end
K.read_file = read_file

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function deep_copy(v, seen)
    if type(v) ~= "table" then return v end
    seen = seen or {}
    if seen[v] then return seen[v] end
    local t = {}
    seen[v] = t
    for k, x in pairs(v) do t[deep_copy(k, seen)] = deep_copy(x, seen) end
    return t
end
K.deep_copy = deep_copy

-- The node's seconds -> milliseconds (tn_config_ms): at least 1 ms, truncated.
local function config_ms(seconds)
    local ms = seconds * 1000.0
    if ms < 1.0 then return 1 end
    return math.floor(ms)
end

local function fmt_g6(x) return string.format("%.6g", x) end

---------------------------------------------------------------------------- configuration

-- Runs a config text (assignment style, as `timenetd --print-config` prints and node configs
-- are written) and returns the assigned keys.
local function run_assignments(text, name, defaults)
    local env = setmetatable({}, { __index = defaults }) -- a config may read keys set earlier
    local fn, err = load(text, "@" .. name, "t", env)
    if not fn then error(err, 0) end
    fn()
    return setmetatable(env, nil)
end

-- Key types from c/tn_config_keys.h, so numbers are floats where the node pushes floats.
local function header_keys()
    local text = read_file(REPO .. "/c/tn_config_keys.h")
    if not text then return nil end
    local keys = {}
    for kind, name, rest in text:gmatch("%f[%w](%u+)%(([%w_]+),([^\n]*)") do
        if name == "name" then -- the format comment at the top
            kind = nil
        end
        if kind == "INT" or kind == "NUM" then
            keys[name] = { type = kind, default = tonumber(rest:match("^%s*([%-%d%.e]+)")) }
        elseif kind == "BOOL" then
            keys[name] = { type = kind, default = rest:match("^%s*(%a+)") == "true" }
        elseif kind == "STR" then
            keys[name] = { type = kind, default = rest:match('^%s*"(.-)"') or "" }
        elseif kind == "LIST" then
            keys[name] = { type = kind, default = {} }
        elseif kind == "NLIST" then
            local list = {}
            for n in (rest:match('^%s*%d+,%s*"(.-)"') or ""):gmatch("%S+") do
                list[#list + 1] = tonumber(n) + 0.0
            end
            keys[name] = { type = kind, default = list }
        end
    end
    return keys
end

local defaults_cache
-- The node's defaults: `timenetd --print-config` (BUILD/timenetd or $TIMENETD), else the
-- defaults parsed from c/tn_config_keys.h. Returns a fresh table.
function K.defaults()
    if not defaults_cache then
        local types = header_keys() or {}
        local values
        local bins = {}
        if os.getenv("TIMENETD") then bins[#bins + 1] = os.getenv("TIMENETD") end
        bins[#bins + 1] = (os.getenv("BUILD") or "build") .. "/timenetd"
        bins[#bins + 1] = REPO .. "/build/timenetd"
        for _, bin in ipairs(bins) do
            local fh = io.open(bin, "rb")
            if fh then fh:close() end
            if fh then
                local p = io.popen(shell_quote(bin) .. " --print-config 2>/dev/null")
                local text = p and p:read("a")
                if p then p:close() end
                if text and text:find("policy_dir", 1, true) then
                    local ok, env = pcall(run_assignments, text, "print-config")
                    if ok then
                        values = env
                        break
                    end
                end
            end
        end
        if not values then
            values = {}
            for k, t in pairs(types) do values[k] = deep_copy(t.default) end
        end
        assert(next(values), "policykit: no config defaults (build timenetd or keep c/tn_config_keys.h)")
        for k, v in pairs(values) do
            local t = types[k] and types[k].type
            if t == "NUM" then values[k] = v + 0.0 end
            if t == "NLIST" then
                for i, x in ipairs(v) do v[i] = x + 0.0 end
            end
        end
        defaults_cache = values
    end
    return deep_copy(defaults_cache)
end

-- Defaults plus overrides (a table, or the path of a node config file); unknown keys are
-- errors, as in the node.
function K.config(overrides)
    local cfg = K.defaults()
    if type(overrides) == "string" then
        overrides = run_assignments(assert(read_file(overrides), "cannot read " .. overrides), overrides,
            deep_copy(cfg))
    end
    for k, v in pairs(overrides or {}) do
        if cfg[k] == nil then error("policykit: unknown config key '" .. tostring(k) .. "'", 2) end
        v = deep_copy(v)
        if math.type(cfg[k]) == "float" and type(v) == "number" then v = v + 0.0 end
        if type(cfg[k]) == "table" and type(v) == "table" and math.type(cfg[k][1]) == "float" then
            for i, x in ipairs(v) do v[i] = x + 0.0 end
        end
        cfg[k] = v
    end
    return cfg
end

---------------------------------------------------------------------------- the sandbox

-- Worst-case steps of a Lua pattern match on n bytes (c/tn_policy_sandbox.c pattern_cost).
local function pattern_cost(p, n)
    local cost, i, plen = 1.0, 1, #p
    local anchored = p:sub(1, 1) == "^"
    if anchored then i = 2 end
    while i <= plen do
        local len, c = 1, p:sub(i, i)
        local skip = false
        if c == "(" or c == ")" then
            i = i + 1
            skip = true
        elseif c == "%" then
            local nx = p:sub(i + 1, i + 1)
            if nx == "b" then
                i = i + 4
                skip = true
            elseif nx == "f" then
                i = i + 2
                c = "["
                if i > plen then break end
            else
                len = 2
            end
        end
        if not skip then
            if c == "[" then
                local j = i + 1
                if p:sub(j, j) == "^" then j = j + 1 end
                if p:sub(j, j) == "]" then j = j + 1 end
                while j <= plen and p:sub(j, j) ~= "]" do j = j + (p:sub(j, j) == "%" and 2 or 1) end
                len = j - i + 1
            end
            i = i + len
            local q = p:sub(i, i)
            if q == "*" or q == "+" or q == "-" then
                cost = cost * (n + 1)
                i = i + 1
            elseif q == "?" then
                cost = cost * 2
                i = i + 1
            end
        end
    end
    return anchored and cost or cost * (n + 1)
end
K.pattern_cost = pattern_cost

local function guarded(fn, is_find)
    return function(s, p, ...)
        if type(s) ~= "string" and type(s) ~= "number" then return fn(s, p, ...) end
        if type(p) ~= "string" and type(p) ~= "number" then return fn(s, p, ...) end
        local plain = is_find and select(2, ...)
        s, p = tostring(s), tostring(p)
        if not plain and pattern_cost(p, #s) > PATTERN_STEPS then
            error(string.format("pattern too complex for a subject of %d bytes (worst case above %d steps)",
                #s, math.floor(PATTERN_STEPS)), 2)
        end
        return fn(s, p, ...)
    end
end

-- One generation's state: its base environment, hooks, persisted tables, timers.
local Gen = {}
Gen.__index = Gen

local function budget_error(gen)
    return string.format("policy call exceeded its CPU budget (%d ms)", math.floor(gen.budget * 1000))
end

-- Calls fn(...) as the node would from C: with a budget that pcall inside cannot swallow and
-- the sandbox's string methods. Returns ok, results... or false, message.
function Gen:pcall(budget, fn, ...)
    local string_mt = getmetatable("")
    local saved_index = string_mt.__index
    local old_hook, old_mask, old_count = debug.gethook()
    self.budget, self.budget_hit, self.call_start = budget, false, os.clock()
    local gen = self
    self.hookfn = function()
        if gen.budget_hit or os.clock() - gen.call_start > gen.budget then
            gen.budget_hit = true
            error(budget_error(gen), 2)
        end
    end
    string_mt.__index = self.string
    debug.sethook(self.hookfn, "", HOOK_EVERY)
    local res = table.pack(pcall(fn, ...))
    debug.sethook(old_hook, old_mask, old_count)
    string_mt.__index = saved_index
    self.hookfn = nil
    if not res[1] and type(res[2]) ~= "string" then res[2] = type(res[2]) end
    return table.unpack(res, 1, res.n)
end

local function make_env(base)
    return setmetatable({}, { __index = base })
end

-- The libraries a policy sees (c/tn_policy_sandbox.c), fresh per generation.
local function make_base(gen)
    local base = {}
    for _, k in ipairs({ "assert", "error", "getmetatable", "ipairs", "next", "pairs", "rawequal",
        "rawget", "rawlen", "rawset", "select", "tonumber", "tostring", "type", "warn", "_VERSION" }) do
        base[k] = _G[k]
    end
    base._G = base
    local str = {}
    for k, v in pairs(string) do str[k] = v end
    str.dump = nil
    str.find = guarded(string.find, true)
    str.match = guarded(string.match, false)
    str.gmatch = guarded(string.gmatch, false)
    str.gsub = guarded(string.gsub, false)
    str.rep = function(s, n, sep)
        s = tostring(s)
        local ls = sep and #tostring(sep) or 0
        if math.tointeger(n) and n > 0 and (#s + ls) * n > STRING_MAX then
            error(string.format("string.rep result above %d bytes", STRING_MAX), 2)
        end
        return string.rep(s, n, sep)
    end
    gen.string = str
    base.string = str
    local tbl, mth, utf = {}, {}, {}
    for k, v in pairs(table) do tbl[k] = v end
    for k, v in pairs(math) do mth[k] = v end
    for k, v in pairs(utf8) do utf[k] = v end
    base.table, base.math, base.utf8 = tbl, mth, utf
    base.os = { time = os.time, clock = os.clock, difftime = os.difftime }
    local function rethrowing(fn)
        return function(...)
            local res = table.pack(fn(...))
            if gen.budget_hit then error("policy call exceeded its CPU budget", 2) end
            return table.unpack(res, 1, res.n)
        end
    end
    base.pcall = rethrowing(pcall)
    base.xpcall = rethrowing(xpcall)
    local co = {}
    for k, v in pairs(coroutine) do co[k] = v end
    co.resume = rethrowing(coroutine.resume)
    -- plain Lua does not carry a debug.sethook hook into new coroutines: set it on each
    co.create = function(f)
        local c = coroutine.create(f)
        if gen.hookfn then debug.sethook(c, gen.hookfn, "", HOOK_EVERY) end
        return c
    end
    co.wrap = function(f)
        local c = co.create(f)
        return function(...)
            local res = table.pack(coroutine.resume(c, ...))
            if gen.budget_hit then error("policy call exceeded its CPU budget", 2) end
            if not res[1] then error(res[2], 2) end
            return table.unpack(res, 2, res.n)
        end
    end
    base.coroutine = co
    base.getmetatable = function(v)
        if type(v) == "string" then return "string" end
        return getmetatable(v)
    end
    base.setmetatable = function(t, mt)
        if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
            error("__gc metamethods are not allowed in policies", 2)
        end
        return setmetatable(t, mt)
    end
    base.collectgarbage = function(opt, ...)
        opt = opt or "collect"
        if opt ~= "count" and opt ~= "collect" and opt ~= "step" and opt ~= "isrunning" then
            error(string.format("collectgarbage('%s') is not allowed in policies", tostring(opt)), 2)
        end
        return collectgarbage(opt, ...)
    end
    base.load = function(chunk, name, _, env)
        if type(chunk) ~= "string" then error("bad argument #1 to 'load' (string expected)", 2) end
        return load(chunk, name or "=(load)", "t", env or make_env(base))
    end
    return base
end

---------------------------------------------------------------------------- the fake tn

local Policy = {}
Policy.__index = Policy

-- Peer proxies handed to hooks: read-only, dead after the call (as the node's userdata).
local proxies = setmetatable({}, { __mode = "k" })

local function peer_proxy(target, on_read)
    local box = { target = target }
    local proxy = setmetatable({}, {
        __index = function(_, k)
            if on_read then on_read(k) end
            local t = box.target
            if not t then return nil end
            return t[k]
        end,
        __newindex = function() error("the peer object is read-only (use tn.tag(peer, text))", 2) end,
        __tostring = function() return "peer(" .. tostring(box.target and box.target.addr or "?") .. ")" end,
        __metatable = "peer",
    })
    proxies[proxy] = box
    return proxy, function() box.target = nil end
end

local function config_proxy(cfg)
    return setmetatable({}, {
        __index = function(_, k)
            local v = cfg[k]
            if v == nil then error("unknown config key '" .. tostring(k) .. "'", 2) end
            return v
        end,
        __newindex = function() error("tn.config is read-only", 2) end,
    })
end

-- Serialises plain data like the node's state transfer (c/tn_policy_state.c): returns a deep
-- copy and its approximate encoded size, or nil, why.
local function plain_copy(v, depth)
    local t = type(v)
    if t == "boolean" then return v, 1 end
    if t == "number" then return v, 9 end
    if t == "string" then return v, 5 + #v end
    if t ~= "table" then return nil, "state holds a " .. t .. " (only plain data persists)" end
    if depth >= STATE_DEPTH_MAX then
        return nil, string.format("state nested deeper than %d (a cycle?)", STATE_DEPTH_MAX)
    end
    local out, size = {}, 2
    for k, x in pairs(v) do
        local kt = type(k)
        if kt ~= "string" and kt ~= "number" and kt ~= "boolean" then
            return nil, "state has a " .. kt .. " key"
        end
        local kc, ks = plain_copy(k, depth + 1)
        if kc == nil then return nil, ks end
        local xc, xs = plain_copy(x, depth + 1)
        if xc == nil then return nil, xs end
        out[kc] = xc
        size = size + ks + xs
    end
    return out, size
end

function Policy:_log(level, text)
    self.logs[#self.logs + 1] = { level = level, text = text, t = self.clock }
end

-- One log line per generation and message, as the node's tn_policy_log_once.
function Policy:_log_once(gen, level, text)
    if gen.seen[text] then return end
    gen.seen[text] = true
    self:_log(level, text)
end

local function make_tn(pol, gen)
    local tn = {}
    function tn.log(level, fmt, ...)
        if type(level) ~= "string" or not LEVELS[level] then
            error("bad argument #1 to 'log' (level must be debug, info, warn or error)", 2)
        end
        pol:_log(level, string.format(fmt, ...))
    end
    function tn.now() return pol.clock - pol.boot end
    function tn.time() return pol.clock end
    function tn.metric(name)
        if type(name) ~= "string" then error("bad argument #1 to 'metric' (string expected)", 2) end
        return pol.metrics[name] or 0
    end
    function tn.count(name, n)
        if type(name) ~= "string" then error("bad argument #1 to 'count' (string expected)", 2) end
        if name:find("[^a-z0-9_]") then
            error("bad argument #1 to 'count' (counter names use a-z, 0-9 and _)", 2)
        end
        pol.counts[name] = (pol.counts[name] or 0) + (n or 1)
    end
    function tn.tag(peer, text)
        if text ~= nil and type(text) ~= "string" and type(text) ~= "number" then
            error("bad argument #2 to 'tag' (string expected)", 2)
        end
        text = text ~= nil and tostring(text) or nil
        if #(text or "") > TAG_MAX then error("bad argument #2 to 'tag' (tag longer than 32 bytes)", 2) end
        local box = proxies[peer]
        if box then
            if not box.target then error("tn.tag: no peer record (call it inside a hook)", 2) end
            box.target.tag = text
        elseif type(peer) == "table" then
            peer.tag = text
        else
            error("bad argument #1 to 'tag' (peer expected)", 2)
        end
    end
    function tn.after(seconds, fn)
        if type(seconds) ~= "number" then error("bad argument #1 to 'after' (number expected)", 2) end
        if type(fn) ~= "function" then error("bad argument #2 to 'after' (function expected)", 2) end
        if not (seconds >= 0 and seconds <= 86400) then
            error("bad argument #1 to 'after' (seconds must be in [0, 86400])", 2)
        end
        if #gen.timers >= TIMERS_MAX then
            error(string.format("too many pending timers (%d)", TIMERS_MAX), 2)
        end
        gen.timer_seq = gen.timer_seq + 1
        gen.timers[#gen.timers + 1] = { due = pol.clock + seconds, fn = fn, seq = gen.timer_seq }
    end
    function tn.persist(key, version, init, migrate)
        if type(key) ~= "string" or #key == 0 or #key >= 64 then
            error("bad argument #1 to 'persist' (bad key)", 2)
        end
        if math.tointeger(version) == nil then
            error("bad argument #2 to 'persist' (number has no integer representation)", 2)
        end
        if init ~= nil and type(init) ~= "function" then
            error("bad argument #3 to 'persist' (function expected)", 2)
        end
        if migrate ~= nil and type(migrate) ~= "function" then
            error("bad argument #4 to 'persist' (function expected)", 2)
        end
        for _, ps in ipairs(gen.persist) do
            if ps.key == key then error(string.format("tn.persist: key '%s' declared twice", key), 2) end
        end
        if #gen.persist >= PERSIST_MAX then
            error(string.format("tn.persist: more than %d keys", PERSIST_MAX), 2)
        end
        local t = init and init() or {}
        if type(t) ~= "table" then error("tn.persist: init must return a table", 2) end
        gen.persist[#gen.persist + 1] = { key = key, version = math.tointeger(version), table = t,
            migrate = migrate }
        return t
    end
    tn.config = config_proxy(deep_copy(pol.cfg)) -- a policy mutating a list cannot touch the kit's
    tn.protocol = PROTOCOL_VERSION
    return tn
end

---------------------------------------------------------------------------- loading

local function list_lua_files(dir)
    local p = io.popen("ls -1a " .. shell_quote(dir) .. " 2>/dev/null")
    local names = {}
    if p then
        for name in p:lines() do
            if #name >= 5 and name:sub(1, 1) ~= "." and name:sub(-4) == ".lua" then
                names[#names + 1] = name
            end
        end
        p:close()
    end
    table.sort(names)
    return names
end

-- Loads path as a chunk in a fresh environment, runs it; returns ok, value or false, message.
local function load_file(gen, path, chunkname)
    local src = read_file(path)
    if not src then return false, path .. ": cannot read" end
    local fn, err = load(src, chunkname, "t", make_env(gen.base))
    if not fn then return false, err end
    return gen:pcall(gen.load_budget, fn)
end

local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
        if type(a) == type(b) and (type(a) == "number" or type(a) == "string") then return a < b end
        return type(a) < type(b)
    end)
    return keys
end

function Policy:_build()
    local gen = setmetatable({ hooks = {}, hook_file = {}, persist = {}, timers = {}, timer_seq = 0,
        seen = {}, modules = {}, files = {}, n_tests = 0, loaded = {},
        budget = 0, load_budget = self.load_budget }, Gen)
    gen.base = make_base(gen)
    gen.tn = make_tn(self, gen)
    gen.base.tn = gen.tn
    gen.base.print = function(...)
        local t = table.pack(...)
        for i = 1, t.n do t[i] = tostring(t[i]) end
        gen.tn.log("info", "%s", table.concat(t, " ", 1, t.n))
    end
    local dir = self.dir
    gen.base.require = function(name)
        if type(name) ~= "string" or name:find("[^%w_]") then
            error("bad argument #1 to 'require' (module names are letters, digits and _ "
                .. "(dir/lib/NAME.lua))", 2)
        end
        if gen.loaded[name] ~= nil then return gen.loaded[name] end
        local src = read_file(dir .. "/lib/" .. name .. ".lua")
        if not src then error(dir .. "/lib/" .. name .. ".lua: cannot read", 2) end
        local fn, err = load(src, "@lib/" .. name .. ".lua", "t", make_env(gen.base))
        if not fn then error(err, 0) end
        local v = fn()
        if v == nil then v = true end
        gen.loaded[name] = v
        return v
    end
    local names = list_lua_files(dir)
    if #names == 0 then return nil, dir .. ": no *.lua policy files" end
    if #names > FILES_MAX then return nil, string.format("%s: more than %d policy files", dir, FILES_MAX) end
    for _, name in ipairs(names) do
        local path = dir .. "/" .. name
        local ok, mod = load_file(gen, path, "@" .. path)
        if not ok then return nil, mod end
        if type(mod) ~= "table" then
            return nil, string.format("%s: must return a table of hooks (got %s)", path, type(mod))
        end
        for _, h in ipairs(K.HOOKS) do
            local f = rawget(mod, h)
            if f ~= nil then
                if type(f) ~= "function" then
                    return nil, string.format("%s: '%s' must be a function, not a %s", path, h, type(f))
                end
                if gen.hooks[h] then
                    return nil, string.format("%s: hook '%s' is already defined in %s", path, h,
                        gen.hook_file[h])
                end
                gen.hooks[h], gen.hook_file[h] = f, path
            end
        end
        local tests = rawget(mod, "tests")
        if tests ~= nil then
            if type(tests) ~= "table" then return nil, path .. ": 'tests' must be a table of functions" end
            for _, k in ipairs(sorted_keys(tests)) do
                local tname = math.type(k) == "integer" and ("#" .. k) or (type(k) == "string" and k or "?")
                local t = tests[k]
                if type(t) ~= "function" then
                    return nil, string.format("%s: self-test %s is not a function", path, tname)
                end
                local tok, terr = gen:pcall(gen.load_budget, t)
                if not tok then return nil, string.format("%s (self-test %s failed)", terr, tname) end
                gen.n_tests = gen.n_tests + 1
            end
        end
        gen.modules[name] = mod
        gen.files[#gen.files + 1] = path
    end
    return gen
end

-- Imports persisted state into gen (c/tn_policy_state.c tn_state_import).
function Policy:_import(gen, saved)
    for _, ps in ipairs(gen.persist) do
        local b = saved and saved[ps.key]
        if b then
            local src = deep_copy(b.data)
            local ok = true
            if b.version ~= ps.version then
                if not ps.migrate then
                    self:_log("warn", string.format(
                        "state '%s' reset: version %d -> %d and no migrate function", ps.key, b.version,
                        ps.version))
                    ok = false
                else
                    local mok, res = gen:pcall(gen.load_budget, ps.migrate, src, b.version)
                    if not mok or type(res) ~= "table" then
                        self:_log("error", string.format(
                            "state '%s' migration %d -> %d failed: %s; starting fresh", ps.key,
                            b.version, ps.version, mok and "it did not return a table" or tostring(res)))
                        ok = false
                    else
                        src = res
                    end
                end
            end
            if ok then
                for k in pairs(ps.table) do ps.table[k] = nil end
                for k, v in pairs(src) do ps.table[k] = v end
            end
        end
    end
end

-- The persisted state as the node would save it: { key = { version =, data = } }.
function Policy:export()
    local out = {}
    local gen = self.gen
    if not gen then return out end
    for _, ps in ipairs(gen.persist) do
        local data, size = plain_copy(ps.table, 0)
        if data == nil then
            self:_log_once(gen, "warn", string.format("state '%s' not saved: %s", ps.key, size))
        elseif size > self.cfg.policy_state_max then
            self:_log_once(gen, "warn", string.format("state '%s' not saved: state larger than %d bytes",
                ps.key, self.cfg.policy_state_max))
        else
            out[ps.key] = { version = ps.version, data = data }
        end
    end
    return out
end

-- Loads a policy directory. opts: config (table or node config path), time (wall seconds),
-- state (from pol:export()), metrics (name -> value), budget, load_budget (seconds).
-- Raises the node's error message on failure; K.try_load returns nil, message instead.
function K.try_load(dir, opts)
    opts = opts or {}
    local cfg = K.config(opts.config)
    local pol = setmetatable({ dir = dir, cfg = cfg, opts = opts, logs = {}, counts = {},
        metrics = opts.metrics or {}, clock = opts.time or 1.7e9, errors = {}, fallbacks = {},
        generation = 0, c_strikes = {} }, Policy)
    pol.boot = pol.clock - 1000
    pol.budget = opts.budget or math.max(cfg.policy_budget * BUDGET_FACTOR, BUDGET_MIN_S)
    pol.load_budget = opts.load_budget or math.max(cfg.policy_load_budget * BUDGET_FACTOR, LOAD_BUDGET_MIN_S)
    local gen, err = pol:_build()
    if not gen then return nil, err end
    pol:_swap(gen, opts.state, "start")
    return pol
end

function K.load(dir, opts)
    local pol, err = K.try_load(dir, opts)
    if not pol then error(err, 2) end
    return pol
end

function Policy:_swap(gen, saved, why)
    self:_import(gen, saved)
    self.gen = gen
    self.generation = self.generation + 1
    self.breaker_open, self.consecutive_errors = false, 0
    self.hooks = gen.hooks
    self.modules = gen.modules
    local n = 0
    for _ in pairs(gen.hooks) do n = n + 1 end
    self:_log("info", string.format(
        "Policy generation %d loaded from %s (%s): %d files, %d hooks, %d self-tests passed",
        self.generation, self.dir, why, #gen.files, n, gen.n_tests))
end

-- A reload (file saved, SIGHUP, control socket): builds a new generation from the directory
-- (optionally another one), imports the old generation's state. On failure the old
-- generation stays and false, "file:line ...; policy generation N is still active" returns.
function Policy:reload(dir)
    if dir then self.dir = dir end
    local gen, err = self:_build()
    if not gen then
        return false, string.format("%s; policy generation %d is still active", err, self.generation)
    end
    self:_swap(gen, self:export(), "reload")
    return true
end

-- A node restart: the state goes through the store (export), timers and tags are gone.
function Policy:restart()
    local saved = self:export()
    local gen, err = self:_build()
    if not gen then return false, err end
    self.generation = 0
    self.c_strikes = {} -- the core's counts live in memory
    self:_swap(gen, saved, "start")
    return true
end

-- The table a policy declared with tn.persist(key, ...).
function Policy:state(key)
    for _, ps in ipairs(self.gen.persist) do
        if ps.key == key then return ps.table end
    end
end

function Policy:module(name)
    return self.modules[name] or self.modules[name .. ".lua"]
end

function Policy:has(hook) return self.hooks[hook] ~= nil end

-- Log lines (texts) containing `text` (plain).
function Policy:logged(text)
    local n = 0
    for _, l in ipairs(self.logs) do
        if l.text:find(text, 1, true) then n = n + 1 end
    end
    return n
end

---------------------------------------------------------------------------- the clock

function Policy:_run_timers()
    local gen = self.gen
    while true do
        local due_i
        for i, t in ipairs(gen.timers) do
            if t.due <= self.clock and (not due_i or t.due < gen.timers[due_i].due
                or (t.due == gen.timers[due_i].due and t.seq < gen.timers[due_i].seq)) then
                due_i = i
            end
        end
        if not due_i then return end
        local t = table.remove(gen.timers, due_i)
        local ok, err = gen:pcall(self.budget, t.fn)
        if not ok then self:_error("on_tick", err) end
    end
end

-- Moves the clock forward by dt seconds, running tn.after timers as they fall due.
function Policy:advance(dt)
    local target = self.clock + dt
    for _ = 1, TIMER_RUNS_MAX do
        local next_due
        for _, t in ipairs(self.gen.timers) do
            if t.due <= target and (not next_due or t.due < next_due) then next_due = t.due end
        end
        if not next_due then break end
        self.clock = math.max(self.clock, next_due)
        self:_run_timers()
    end
    self.clock = target
    return self
end

-- Sets the wall clock (tn.time()) to t seconds, running timers due by then.
function Policy:set_time(t)
    if t > self.clock then return self:advance(t - self.clock) end
    self.clock = t
    return self
end

---------------------------------------------------------------------------- calling hooks

function Policy:_error(hook, why)
    self.errors[#self.errors + 1] = { hook = hook, error = why }
    self:_log_once(self.gen, "warn", string.format(
        "hook %s failed: %s (C default used; repeats are counted, not logged)", hook, why))
    self.consecutive_errors = self.consecutive_errors + 1
    if self.consecutive_errors >= self.cfg.policy_breaker_errors and not self.breaker_open then
        self.breaker_open = true
        self:_log("error", string.format("Policy circuit breaker open after %d consecutive hook errors: "
            .. "C defaults apply until a policy reload succeeds", self.consecutive_errors))
    end
end

-- Hooks whose first argument is the peer object.
local PEER_HOOKS = { score = true, reconnect = true, on_misbehavior = true, health = true,
    on_message = true }

local function wrap_args(hook, args)
    local a = args[1]
    if PEER_HOOKS[hook] and type(a) == "table" and getmetatable(a) ~= "peer" then
        local proxy, close = peer_proxy(a)
        args[1] = proxy
        return close
    end
    return function() end
end

-- Calls a hook directly: returns what it returned; errors (with the policy's message) raise.
-- A peer table as the first argument is handed over as the node's read-only peer object.
function Policy:call(hook, ...)
    local f = self.hooks[hook]
    if not f then error("policykit: no hook '" .. hook .. "' in " .. self.dir, 2) end
    local args = table.pack(...)
    local close = wrap_args(hook, args)
    local res = table.pack(self.gen:pcall(self.budget, f, table.unpack(args, 1, args.n)))
    close()
    if not res[1] then error(res[2], 2) end
    return table.unpack(res, 2, res.n)
end

-- The node's built-in defaults (c/tn_policy_hooks.c), used when a hook is missing or fails.
local C_DEFAULT = {}
function C_DEFAULT.score() return 0 end
function C_DEFAULT.reconnect(cfg, _, attempt)
    if attempt >= cfg.reconnect_max_attempts then return false end
    local b = cfg.reconnect_backoff
    local mult = #b > 0 and b[math.min(attempt + 1, #b)] or 1.0
    return config_ms(cfg.reconnect_delay * mult) / 1000
end
function C_DEFAULT.on_misbehavior(cfg, _, kind, _, strikes)
    if kind == "version" then return "disconnect", 0 end
    if (strikes or 0) >= cfg.strike_limit then return "ban", cfg.ban_temporary end
    if kind == "message" then return "ignore", 0 end
    return "disconnect", 0
end
function C_DEFAULT.health(cfg, peer, event)
    if event == "missed" and peer and (peer.missed_run or 0) >= cfg.missed_pongs_close then return "close" end
    return "tolerate"
end
K.C_DEFAULT = C_DEFAULT

-- Validation of results, as the node does it: returns the decision or nil, why.
local VALIDATE = {}
function VALIDATE.score(x)
    local n = type(x) == "string" and tonumber(x) or x
    if type(n) ~= "number" then return nil, "returned " .. type(x) .. ", expected a finite number" end
    x = n
    if x ~= x or x == math.huge or x == -math.huge then
        return nil, "returned NaN or infinity, expected a finite number"
    end
    return x
end
function VALIDATE.reconnect(x)
    if x == nil or x == false then return false end
    local s = (type(x) == "number" or type(x) == "string") and tonumber(x) or nil
    if s and s >= 0 and s <= MAX_DELAY_S then return config_ms(s) / 1000 end
    return nil, "expected seconds in [0, 604800] or false to give up"
end
function VALIDATE.on_misbehavior(a, s)
    if a == "ignore" or a == "disconnect" then return a, 0 end
    s = (type(s) == "number" or type(s) == "string") and tonumber(s) or nil
    if a == "ban" and s and s > 0 and s <= MAX_BAN_S then return a, s end
    return nil, "expected 'ignore', 'disconnect' or 'ban', seconds"
end
function VALIDATE.health(r)
    if r == "close" or r == "tolerate" then return r end
    return nil, "expected 'tolerate' or 'close'"
end

-- What the node would decide: the hook's result validated, or the C default when the hook is
-- missing, fails or returns something invalid (counted in pol.errors / pol.fallbacks).
--   score -> number; reconnect -> seconds (after the node's ms rounding) or false;
--   on_misbehavior -> action, seconds; health -> "tolerate" | "close".
-- After policy_breaker_errors failed calls in a row the breaker opens: C defaults until a
-- successful reload, as in the node. Other hooks: their raw results (errors raise).
function Policy:decide(hook, ...)
    local args = table.pack(...)
    local f = self.hooks[hook]
    local default = C_DEFAULT[hook]
    if not default then
        return self:call(hook, ...)
    end
    local function fallback()
        self.fallbacks[hook] = (self.fallbacks[hook] or 0) + 1
        local r = table.pack(default(self.cfg, table.unpack(args, 1, args.n)))
        if hook == "reconnect" and r[1] == false then return false end
        return table.unpack(r, 1, r.n)
    end
    if not f then
        local r = table.pack(default(self.cfg, table.unpack(args, 1, args.n)))
        return table.unpack(r, 1, r.n)
    end
    if self.breaker_open then return fallback() end
    local cargs = table.pack(table.unpack(args, 1, args.n))
    local close = wrap_args(hook, cargs)
    local res = table.pack(self.gen:pcall(self.budget, f, table.unpack(cargs, 1, cargs.n)))
    close()
    if not res[1] then
        self:_error(hook, res[2])
        return fallback()
    end
    local out = table.pack(VALIDATE[hook](table.unpack(res, 2, math.max(res.n, 3))))
    if out[1] == nil then
        self:_error(hook, out[2])
        return fallback()
    end
    self.consecutive_errors = 0
    return table.unpack(out, 1, out.n)
end

-- The periodic tick: the on_tick hook (if any), errors accounted like the node's.
function Policy:tick()
    local f = self.hooks.on_tick
    if not f or self.breaker_open then return end
    local ok, err = self.gen:pcall(self.budget, f)
    if ok then self.consecutive_errors = 0 else self:_error("on_tick", err) end
end

---------------------------------------------------------------------------- fake peers and events

local peer_seq = 0

-- A fake peer with every field of the node's peer object. Defaults: an open outbound session
-- to 10.0.<n>.1:24100 (each call another /24), one session, nothing measured yet.
function K.peer(fields)
    fields = fields or {}
    peer_seq = peer_seq + 1
    local n = peer_seq
    local ip = fields.ip
    if not ip and fields.addr then
        ip = fields.addr:match("^%[([^%]]+)%]") or fields.addr:match("^([^:]+):%d+$")
    end
    ip = ip or string.format("10.0.%d.%d", (n // 250) % 250, 1 + n % 250)
    local port = fields.port or (fields.addr and tonumber(fields.addr:match(":(%d+)$"))) or 24100
    local id = fields.id or string.format("%064x", n)
    local outbound = fields.outbound
    if outbound == nil then outbound = fields.dir ~= "in" end
    local p = {
        addr = ip:find(":", 1, true) and ("[" .. ip .. "]:" .. port) or (ip .. ":" .. port),
        ip = ip, port = port, id = id, short_id = id:sub(1, 8), name = "peer" .. n,
        dir = outbound and "out" or "in", outbound = outbound, masternode = false,
        connected = true, connected_s = 0, rtt_ms = 0, pings = 0, pongs = 0, late = 0, missed = 0,
        missed_run = 0, bytes_in = 0, bytes_out = 0, msgs_in = 0, msgs_out = 0, sessions = 1,
        disconnects = 0, strikes = 0, score = 0, tag = nil, height = 0,
        -- quality across sessions (tn_quality.c): a peer with no history
        success_rate = 1, uptime_share = 0, rtt_avg_ms = 0, pings_total = 0, late_total = 0,
        missed_total = 0, blocks = 0, dups = 0, invalid = 0, disconnects_total = 0,
    }
    for k, v in pairs(fields) do p[k] = v end
    return p
end

-- A new session with the peer: counters of the old one are gone, as in the core.
function K.connect(peer)
    peer.sessions = (peer.sessions or 0) + 1
    peer.connected, peer.connected_s = true, 0
    for _, k in ipairs({ "rtt_ms", "pings", "pongs", "late", "missed", "missed_run", "bytes_in",
        "bytes_out", "msgs_in", "msgs_out" }) do
        peer[k] = 0
    end
    return peer
end

function K.drop(peer)
    if peer.connected then peer.disconnects = (peer.disconnects or 0) + 1 end
    peer.connected, peer.connected_s = false, 0
    return peer
end

function K.uptime(peer, seconds)
    peer.connected_s = (peer.connected_s or 0) + seconds
    return peer
end

-- Round trips in ms, as the core measures them: a ping, its pong, the RTT smoothed
-- (first sample, then 0.8 old + 0.2 new); a pong later than pong_deadline is late and asks
-- the health hook. Returns the health verdicts of late pongs (the node closes on "close").
function K.rtt(pol, peer, samples)
    local verdicts = {}
    for _, ms in ipairs(samples) do
        peer.pings = (peer.pings or 0) + 1
        peer.rtt_ms = (peer.pongs or 0) == 0 and ms or 0.8 * peer.rtt_ms + 0.2 * ms
        peer.pongs = (peer.pongs or 0) + 1
        peer.missed_run = 0
        if ms > pol.cfg.pong_deadline * 1000.0 then
            peer.late = (peer.late or 0) + 1
            local v = pol:decide("health", peer, "late")
            verdicts[#verdicts + 1] = v
            if v == "close" then
                K.drop(peer)
                break
            end
        end
    end
    return verdicts
end

-- n pings in a row without a pong: each miss asks the health hook. Returns the verdicts; the
-- first "close" ends the session (and the list).
function K.miss(pol, peer, n)
    local verdicts = {}
    for _ = 1, n or 1 do
        peer.pings = (peer.pings or 0) + 1
        peer.missed = (peer.missed or 0) + 1
        peer.missed_run = (peer.missed_run or 0) + 1
        local v = pol:decide("health", peer, "missed")
        verdicts[#verdicts + 1] = v
        if v == "close" then
            K.drop(peer)
            break
        end
    end
    return verdicts
end

-- n misbehaviour events of one kind from the peer's IP, spaced `every` seconds on the
-- policy's clock (default 0). The 4th hook argument is the core's never-decaying count per
-- IP and kind, kept by the kit. Returns { {action, seconds}, ... }.
function K.misbehave(pol, peer, kind, n, opts)
    opts = opts or {}
    local out = {}
    local key = tostring(peer.ip) .. "\0" .. kind
    for i = 1, n or 1 do
        if i > 1 and opts.every then pol:advance(opts.every) end
        pol.c_strikes[key] = (pol.c_strikes[key] or 0) + 1
        peer.strikes = (peer.strikes or 0) + 1
        local a, s = pol:decide("on_misbehavior", peer, kind, opts.detail or ("test " .. kind),
            pol.c_strikes[key])
        out[#out + 1] = { a, s }
    end
    return out
end

-- The redial decisions for attempts from..from+n-1 (from = 0: right after a loss).
function K.redials(pol, peer, n, opts)
    opts = opts or {}
    local out = {}
    local from = opts.from or 0
    for attempt = from, from + n - 1 do
        out[#out + 1] = pol:decide("reconnect", peer, attempt, opts.reason or "connection refused")
    end
    return out
end

---------------------------------------------------------------------------- replay

-- Fields the recording holds only with a session / with a peer record (c/tn_policy_call.c).
local SESSION_FIELDS = { "dir", "outbound", "masternode", "rtt_ms", "pings", "pongs", "late",
    "missed", "missed_run", "bytes_in", "bytes_out", "score" }
-- What the peer object answers when the session or record is absent (c/tn_policy_api.c).
local NO_SESSION = { outbound = false, masternode = false, connected = false, connected_s = 0,
    rtt_ms = 0, pings = 0, pongs = 0, late = 0, missed = 0, missed_run = 0, bytes_in = 0,
    bytes_out = 0, msgs_in = 0, msgs_out = 0, score = 0, height = 0 }
-- Hooks that only ever see open sessions.
local OPEN_ONLY = { score = true, health = true }

-- Rebuilds the peer a hook saw from a record: known fields, and the set of fields the
-- recording does not hold (reading one makes the decision "not comparable").
local function replay_peer(rec)
    local r = rec.peer
    local known, unknown = {}, {}
    for k, v in pairs(NO_SESSION) do known[k] = v end
    known.sessions, known.disconnects, known.strikes = 0, 0, 0
    if not r then return known, unknown end
    known.addr, known.ip = r.addr, r.ip
    known.port = r.addr and tonumber(r.addr:match(":(%d+)$")) or nil
    if r.id and r.id ~= "" then known.id, known.short_id = r.id, r.id:sub(1, 8) end
    if r.dir then
        for _, k in ipairs(SESSION_FIELDS) do known[k] = r[k] end
        for _, k in ipairs({ "connected_s", "name", "height", "msgs_in", "msgs_out" }) do
            known[k] = nil
            unknown[k] = true
        end
        if OPEN_ONLY[rec.hook] then
            known.connected = true
        else
            known.connected, unknown.connected = nil, true
        end
    end
    if r.sessions then
        known.sessions, known.disconnects = r.sessions, r.disconnects
        unknown.tag = true
    end
    known.strikes = r.strikes or 0
    -- quality fields (tn_quality.c) are known when the recording has them (newer nodes)
    for _, k in ipairs({ "success_rate", "uptime_share", "rtt_avg_ms", "pings_total", "late_total",
        "missed_total", "blocks", "dups", "invalid", "disconnects_total" }) do
        unknown[k] = true
    end
    -- a recorder that writes more of the peer object's fields makes them known
    for _, k in ipairs(K.PEER_FIELDS) do
        if r[k] ~= nil and r[k] ~= json.null then
            known[k], unknown[k] = r[k], nil
        end
    end
    if known.id == "" then known.id, known.short_id = nil, nil end
    return known, unknown
end

local function normalize_recorded(hook, result)
    if hook == "reconnect" then
        if result == false or result == nil then return "false" end
        return fmt_g6(result)
    elseif hook == "on_misbehavior" then
        if type(result) ~= "table" then return tostring(result) end
        if result[1] == "ban" then return "ban " .. fmt_g6(result[2]) end
        return tostring(result[1])
    elseif hook == "score" then
        return result
    end
    return tostring(result)
end

local function normalize_new(hook, a, b)
    if hook == "reconnect" then
        if a == false then return "false" end
        return fmt_g6(a)
    elseif hook == "on_misbehavior" then
        if a == "ban" then return "ban " .. fmt_g6(b) end
        return a
    elseif hook == "score" then
        return a
    end
    return tostring(a)
end

local function same(hook, old, new)
    if hook == "score" then
        return type(old) == "number" and type(new) == "number" and math.abs(old - new) <= SCORE_TOLERANCE
    end
    return old == new
end

-- Reads a recording: a path or a table of lines; returns the decoded records.
function K.read_recording(src)
    local lines = {}
    if type(src) == "table" then
        lines = src
    else
        local f = assert(io.open(src, "rb"), "cannot read recording " .. tostring(src))
        for l in f:lines() do lines[#lines + 1] = l end
        f:close()
    end
    local recs = {}
    for i, l in ipairs(lines) do
        if l:find("%S") then
            local r, _, err = json.decode(l, 1, json.null)
            if type(r) ~= "table" then error(string.format("recording line %d: %s", i, tostring(err)), 2) end
            recs[#recs + 1] = r
        end
    end
    return recs
end

-- Feeds every recorded decision to the policy in dir, in order, on the recording's clock, and
-- compares. opts.config: the recording node's config (table or config file) — C defaults
-- and config-driven policies need the same values. Returns a report:
--   { total, same, changed = { {index, t, hook, peer, args, old, new}, ... },
--     incomparable = { {index, hook, peer, fields = {...}, old, new}, ... }, missing_fields = {...},
--     errors = { {index, hook, error} } }
-- A decision is "not comparable" when the policy read a peer field the recording lacks
-- (connected_s, height, name, msgs_in/out, tag): its inputs cannot be rebuilt.
function K.replay(recording, dir, opts)
    opts = opts or {}
    local recs = K.read_recording(recording)
    local t0 = recs[1] and recs[1].t and recs[1].t / 1000 or nil
    local pol = K.load(dir, { config = opts.config, time = t0, budget = opts.budget })
    local report = { total = 0, same = 0, changed = {}, incomparable = {}, errors = {}, missing_fields = {} }
    for i, rec in ipairs(recs) do
        local hook = rec.hook
        if C_DEFAULT[hook] then
            report.total = report.total + 1
            if rec.t then pol:set_time(rec.t / 1000) end
            local known, unknown = replay_peer(rec)
            local reads = {}
            local target = setmetatable({}, { __index = function(_, k)
                if unknown[k] then reads[k] = true end
                return known[k]
            end })
            local args = type(rec.args) == "table" and rec.args or {}
            local n_errors = #pol.errors
            local a, b
            if hook == "score" then
                a, b = pol:decide(hook, target)
            elseif hook == "reconnect" then
                a, b = pol:decide(hook, target, args[1], args[2])
            elseif hook == "on_misbehavior" then
                a, b = pol:decide(hook, target, args[1], args[2], args[3])
            else
                a, b = pol:decide(hook, target, args[1])
            end
            if #pol.errors > n_errors then
                report.errors[#report.errors + 1] = { index = i, hook = hook,
                    error = pol.errors[#pol.errors].error }
            end
            local old, new = normalize_recorded(hook, rec.result), normalize_new(hook, a, b)
            local row = { index = i, t = rec.t, hook = hook, peer = rec.peer and rec.peer.addr or nil,
                args = args, old = old, new = new }
            local missing = {}
            for k in pairs(reads) do
                missing[#missing + 1] = k
                report.missing_fields[k] = true
            end
            table.sort(missing)
            if #missing > 0 then
                row.fields = missing
                report.incomparable[#report.incomparable + 1] = row
            elseif same(hook, old, new) then
                report.same = report.same + 1
            else
                report.changed[#report.changed + 1] = row
            end
        end
    end
    report.policy = pol
    return report
end

local function show(v)
    if type(v) == "number" then return string.format("%.6g", v) end
    return tostring(v)
end

-- One line per changed decision: "#12 reconnect 10.0.0.1:24100 [1,"connection refused"]: 0.4 -> 0.6"
function K.format_change(c)
    local args = {}
    for i, a in ipairs(c.args or {}) do args[i] = json.encode(a) end
    return string.format("#%d %s %s [%s]: %s -> %s", c.index, c.hook, c.peer or "-",
        table.concat(args, ","), show(c.old), show(c.new))
end

function K.format_report(r)
    local out = {}
    for _, c in ipairs(r.changed) do out[#out + 1] = K.format_change(c) end
    out[#out + 1] = string.format("changed: %d of %d decisions (%d same, %d not comparable, %d hook errors)",
        #r.changed, r.total, r.same, #r.incomparable, #r.errors)
    if #r.incomparable > 0 then
        local f = {}
        for k in pairs(r.missing_fields) do f[#f + 1] = k end
        table.sort(f)
        out[#out + 1] = "not comparable: the policy read peer fields the recording lacks: "
            .. table.concat(f, ", ")
    end
    for _, e in ipairs(r.errors) do
        out[#out + 1] = string.format("error at #%d (%s): %s (the C default was used)", e.index, e.hook,
            e.error)
    end
    return table.concat(out, "\n")
end

---------------------------------------------------------------------------- CLI

local function main(cmd, a, b, c)
    if cmd == "replay" and a and b then
        local ok, r = pcall(K.replay, a, b, { config = c })
        if not ok then
            io.stderr:write("policykit: " .. tostring(r) .. "\n")
            return 1
        end
        print(K.format_report(r))
        return 0
    elseif cmd == "check" and a then
        local pol, err = K.try_load(a, { config = b })
        if not pol then
            io.stderr:write("policykit: " .. err .. "\n")
            return 1
        end
        print(pol.logs[#pol.logs].text)
        return 0
    end
    io.stderr:write("usage: lua5.4 tests/lib/policykit.lua replay RECORDING POLICY_DIR [NODE_CONFIG]\n"
        .. "       lua5.4 tests/lib/policykit.lua check POLICY_DIR [NODE_CONFIG]\n")
    return 2
end

local first = ...
if first ~= "policykit" and arg and arg[0] and arg[0]:find("policykit%.lua$") then
    os.exit(main(...))
end

return K
