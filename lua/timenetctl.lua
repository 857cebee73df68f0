#!/usr/bin/env lua5.4
-- timenetctl: the operator's command line for timenetd, spoken over the node's control socket
-- (data_dir/control.sock, mode 0600: one JSON request per line, one JSON reply per line).
-- Tables for people, --json for scripts. Verbs follow bitcoin-cli where one exists
-- (peers ~ getpeerinfo, ban/unban/bans/clearbans ~ setban/listbanned/clearbanned,
-- addnode, disconnect ~ disconnectnode).
--
-- Exit status: 0 done; 1 the node refused or the command failed; 2 usage error;
-- 3 the node cannot be reached (not running, wrong data dir, no permission, no answer).
-- Needs only lua5.4, LuaSocket (socket.unix) and dkjson: `make` copies it to
-- build/timenetctl, `make install` to BINDIR/timenetctl.
local unix = require("socket.unix")
local json = require("dkjson")

local VERSION = "0.1.0"
local DEFAULT_SOCKETS = { "var/control.sock", "/var/lib/timenet/control.sock" }
local DEFAULT_TIMEOUT = 60 -- seconds; policy reloads answer when the new generation is in force
local SUN_PATH_MAX = 107   -- bytes of a Unix socket path (sockaddr_un)

local EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

---------------------------------------------------------------------------- output helpers

local out = io.stdout

local function printf(fmt, ...) out:write(string.format(fmt, ...)) end

local Fail = {} -- error objects raised by fail(): { code, msg }
Fail.__index = Fail

local function fail(code, fmt, ...)
    error(setmetatable({ code = code, msg = string.format(fmt, ...) }, Fail), 0)
end

local function fmt_duration(s)
    if type(s) ~= "number" then return "-" end
    s = math.floor(s + 0.5)
    if s < 60 then return s .. "s" end
    if s < 3600 then return string.format("%dm%02ds", s // 60, s % 60) end
    if s < 86400 then return string.format("%dh%02dm", s // 3600, s % 3600 // 60) end
    return string.format("%dd%02dh", s // 86400, s % 86400 // 3600)
end

local function fmt_bytes(n)
    if type(n) ~= "number" then return "-" end
    local units = { "B", "KiB", "MiB", "GiB", "TiB" }
    local i = 1
    while n >= 1024 and i < #units do
        n = n / 1024
        i = i + 1
    end
    return i == 1 and string.format("%d B", n) or string.format("%.1f %s", n, units[i])
end

local function fmt_num(x, decimals)
    if type(x) ~= "number" then return "-" end
    if math.type(x) == "integer" or x == math.floor(x) and math.abs(x) < 2 ^ 53 then
        return string.format("%d", math.floor(x))
    end
    return string.format("%." .. (decimals or 2) .. "f", x)
end

local function fmt_time(unix_s)
    if type(unix_s) ~= "number" or unix_s <= 0 then return "-" end
    return os.date("%Y-%m-%d %H:%M:%S", math.floor(unix_s))
end

-- Prints rows as aligned columns. cols: { {title, fn(row) -> text, right_align}, ... }
local function print_table(rows, cols)
    local cells, width = {}, {}
    for c, col in ipairs(cols) do width[c] = #col[1] end
    for r, row in ipairs(rows) do
        cells[r] = {}
        for c, col in ipairs(cols) do
            local v = tostring(col[2](row) or "-")
            cells[r][c] = v
            width[c] = math.max(width[c], utf8.len(v) or #v)
        end
    end
    local function line(values)
        local parts = {}
        for c, v in ipairs(values) do
            local pad = string.rep(" ", width[c] - (utf8.len(v) or #v))
            if c == #cols and not cols[c][3] then pad = "" end
            parts[c] = cols[c][3] and (pad .. v) or (v .. pad)
        end
        out:write(table.concat(parts, "  "), "\n")
    end
    local titles = {}
    for c, col in ipairs(cols) do titles[c] = col[1] end
    line(titles)
    for _, r in ipairs(cells) do line(r) end
end

-- Prints key/value pairs aligned: { {"key", value}, ... } (nil values skipped).
local function print_pairs(pairs_)
    local w = 0
    for _, kv in ipairs(pairs_) do
        if kv[2] ~= nil then w = math.max(w, #kv[1]) end
    end
    for _, kv in ipairs(pairs_) do
        if kv[2] ~= nil then printf("%-" .. w .. "s  %s\n", kv[1], tostring(kv[2])) end
    end
end

local function print_json(v)
    out:write(json.encode(v, { indent = true }), "\n")
end

---------------------------------------------------------------------------- arguments

-- "300", "300s", "5m", "2h", "1d", "1w", "1h30m" -> seconds, or nil.
local function parse_duration(s)
    if s:match("^%d+%.?%d*$") then return tonumber(s) end
    local mult = { s = 1, m = 60, h = 3600, d = 86400, w = 604800, y = 31536000 }
    local total, rest = 0, s
    while #rest > 0 do
        local n, u, tail = rest:match("^(%d+%.?%d*)([smhdwy])(.*)$")
        if not n then return nil end
        total = total + tonumber(n) * mult[u]
        rest = tail
    end
    return total > 0 and total or nil
end

local function is_node_id(s) return s:match("^%x+$") and #s >= 8 and #s <= 64 end

---------------------------------------------------------------------------- the connection

local Ctl = {}
Ctl.__index = Ctl

-- Reads data_dir from a node config file: the file is Lua assignments, evaluated here in
-- an empty environment (reads of other keys give nil).
local function data_dir_of(config)
    local f, err = io.open(config, "r")
    if not f then fail(EXIT_USAGE, "cannot read config %s: %s", config, err) end
    local text = f:read("a")
    f:close()
    local env = {}
    local chunk, perr = load(text, "@" .. config, "t", env)
    if not chunk then fail(EXIT_USAGE, "config %s: %s", config, perr) end
    local ok, rerr = pcall(chunk)
    if not ok then fail(EXIT_USAGE, "config %s: %s", config, tostring(rerr)) end
    return type(env.data_dir) == "string" and env.data_dir or "var"
end

-- Is there something at path? A socket cannot be opened as a file: renaming it to itself
-- succeeds when it exists, and fails with "No such file" only when it does not (a directory
-- we may not enter means it may exist: connecting will say why not).
local function exists(path)
    local ok, err = os.rename(path, path)
    return ok == true or not tostring(err):find("No such file", 1, true)
end

local function socket_path(opts)
    if opts.socket then return opts.socket end
    if opts.datadir then return opts.datadir .. "/control.sock" end
    if opts.config then return data_dir_of(opts.config) .. "/control.sock" end
    for _, p in ipairs(DEFAULT_SOCKETS) do
        if exists(p) then return p end
    end
    return DEFAULT_SOCKETS[1]
end

function Ctl.new(opts)
    return setmetatable({ opts = opts, path = socket_path(opts) }, Ctl)
end

-- One request; returns the decoded reply (ok may be false). Unreachable nodes raise.
function Ctl:call(req)
    local path = self.path
    if #path > SUN_PATH_MAX then
        fail(EXIT_UNREACHABLE, "socket path %s is longer than %d bytes", path, SUN_PATH_MAX)
    end
    local c = unix()
    c:settimeout(self.opts.timeout)
    local ok, err = c:connect(path)
    if not ok then
        c:close()
        local e = tostring(err):lower()
        if e:find("no such file", 1, true) then
            fail(EXIT_UNREACHABLE, "timenetd is not running: no control socket at %s "
                .. "(the node's data_dir/control.sock; use --datadir DIR, --socket PATH or "
                .. "--config FILE)", path)
        elseif e:find("refused", 1, true) then
            fail(EXIT_UNREACHABLE, "timenetd is not running: %s is a stale socket "
                .. "(connection refused)", path)
        elseif e:find("permission", 1, true) or e:find("access", 1, true) then
            fail(EXIT_UNREACHABLE, "cannot open %s: permission denied (the control socket "
                .. "is mode 0600: run as the node's user, e.g. sudo -u timenet timenetctl ...)",
                path)
        elseif e:find("not a socket", 1, true) or e:find("not a directory", 1, true) then
            fail(EXIT_UNREACHABLE, "%s is not a control socket (%s)", path, err)
        end
        fail(EXIT_UNREACHABLE, "cannot connect to %s: %s", path, err)
    end
    local sent, serr = c:send(json.encode(req) .. "\n")
    if not sent then
        c:close()
        fail(EXIT_UNREACHABLE, "cannot send to %s: %s", path, serr)
    end
    local line, rerr = c:receive("*l")
    c:close()
    if not line then
        if rerr == "timeout" then
            fail(EXIT_UNREACHABLE, "no answer from timenetd within %g s (--timeout)",
                self.opts.timeout)
        end
        fail(EXIT_UNREACHABLE, "timenetd closed the connection without answering (%s)", rerr)
    end
    local reply, _, derr = json.decode(line)
    if type(reply) ~= "table" then
        fail(EXIT_UNREACHABLE, "unreadable answer from timenetd: %s", derr or line:sub(1, 80))
    end
    return reply
end

-- A request that must succeed: prints the error and exits 1 otherwise (in JSON mode the
-- reply itself is printed first).
function Ctl:must(req)
    local r = self:call(req)
    if r.ok then return r end
    if self.opts.json then print_json(r) end
    fail(EXIT_REFUSED, "%s", r.error or "the node refused the command")
end

---------------------------------------------------------------------------- verbs

local VERBS = {}   -- in help order
local BY_NAME = {} -- "name" or "group sub"

local function verb(v)
    VERBS[#VERBS + 1] = v
    BY_NAME[v.name] = v
end

-- Prints r as JSON (--json) or calls show(r) for people.
local function render(ctx, r, show)
    if ctx.opts.json then
        r.ok = nil
        print_json(r)
    else
        show(r)
    end
end

local function addr_arg(ctx, args, what)
    local a = args[1]
    if not a then fail(EXIT_USAGE, "%s: missing %s (try: timenetctl %s --help)", ctx.verb.name,
        what or "ADDR", ctx.verb.name) end
    return a
end

verb {
    name = "status", summary = "name, network, id, height, peers, uptime, policy",
    usage = "status",
    help = "Node name, network, identity, height, peers in/out/masternodes, uptime, policy.",
    run = function(ctx)
        local r = ctx.ctl:must({ cmd = "status" })
        render(ctx, r, function()
            local p, pol = r.peers or {}, r.policy or {}
            local policy = pol.active and string.format("generation %s (%s files, %s self-tests)%s",
                fmt_num(pol.generation), fmt_num(pol.files), fmt_num(pol.self_tests),
                pol.breaker == "open" and ", BREAKER OPEN: C defaults apply" or "")
                or "none in force: C defaults apply"
            print_pairs({
                { "name", r.name }, { "network", r.network }, { "node id", r.id },
                { "version", r.version and string.format("%s (protocol %s)", r.version,
                    fmt_num(r.protocol)) },
                { "listen", r.listen ~= "" and r.listen or "(not listening)" },
                { "metrics", r.metrics and (r.metrics ~= "" and ("http://" .. r.metrics .. "/metrics")
                    or "(off)") },
                { "height", fmt_num(r.height) },
                { "tip", r.tip },
                { "peers", string.format("%s connected: %s in, %s out, %s masternodes; %s handshaking",
                    fmt_num(p.connected), fmt_num(p.inbound), fmt_num(p.outbound),
                    fmt_num(p.masternodes), fmt_num(p.pending_inbound)) },
                { "uptime", fmt_duration(r.uptime_s) },
                { "pid", fmt_num(r.pid) },
                { "data dir", r.data_dir },
                { "policy", policy },
                { "policy error", pol.last_error ~= "" and pol.last_error or nil },
            })
        end)
        return EXIT_OK
    end,
}

verb {
    name = "peers", summary = "connected peers, one row each",
    usage = "peers [--all]",
    help = "One row per connected peer: address, short node id, direction, role, name, "
        .. "connected for, RTT, score, bytes in/out, strikes of its IP. --all adds "
        .. "connections still in their handshake.",
    flags = { all = true },
    run = function(ctx)
        local r = ctx.ctl:must({ cmd = "peers", all = ctx.flags.all or nil })
        render(ctx, r, function()
            local rows = r.peers or {}
            if #rows == 0 then
                out:write("no peers connected\n")
                return
            end
            local cols = {
                { "ADDR", function(x) return x.addr end },
                { "ID", function(x) return x.short_id end },
                { "DIR", function(x) return x.dir end },
                { "ROLE", function(x) return x.hello and (x.masternode and "masternode" or "peer") end },
                { "NAME", function(x) return x.name end },
                { "CONNECTED", function(x) return fmt_duration(x.connected_s) end, true },
                { "RTT", function(x)
                    return x.rtt_ms and x.rtt_ms > 0 and fmt_num(x.rtt_ms, 1) .. " ms"
                end, true },
                { "SCORE", function(x) return fmt_num(x.score, 2) end, true },
                { "IN", function(x) return fmt_bytes(x.bytes_in) end, true },
                { "OUT", function(x) return fmt_bytes(x.bytes_out) end, true },
                { "STRIKES", function(x) return fmt_num(x.strikes) end, true },
            }
            if ctx.flags.all then
                table.insert(cols, 4, { "STATE", function(x) return x.state end })
            end
            print_table(rows, cols)
        end)
        return EXIT_OK
    end,
}

verb {
    name = "bans", summary = "active bans",
    usage = "bans",
    help = "Active bans: IP, time left, reason, how many times the IP was banned.",
    run = function(ctx)
        local r = ctx.ctl:must({ cmd = "bans" })
        render(ctx, r, function()
            if #(r.bans or {}) == 0 then
                out:write("no active bans\n")
                return
            end
            table.sort(r.bans, function(a, b) return a.remaining_s > b.remaining_s end)
            print_table(r.bans, {
                { "IP", function(x) return x.ip end },
                { "REMAINING", function(x) return fmt_duration(x.remaining_s) end, true },
                { "COUNT", function(x) return fmt_num(x.count) end, true },
                { "REASON", function(x) return x.reason end },
            })
        end)
        return EXIT_OK
    end,
}

verb {
    name = "ban", summary = "ban an IP (default 24 h)",
    usage = "ban ADDR [DURATION] [--reason TEXT]",
    help = "Bans an IP (ADDR may carry a port; the whole IP is banned) and closes its "
        .. "connections. DURATION: seconds or 30m, 12h, 7d, 1w, 1h30m; default the node's "
        .. "ban_long (24 h). Whitelisted IPs cannot be banned. The ban is stored and survives "
        .. "restarts.",
    options = { reason = true },
    run = function(ctx, args)
        local addr = addr_arg(ctx, args)
        local req = { cmd = "ban", addr = addr, reason = ctx.options.reason }
        if args[2] then
            req.seconds = parse_duration(args[2])
            if not req.seconds then
                fail(EXIT_USAGE, "ban: '%s' is not a duration (e.g. 600, 30m, 12h, 7d)", args[2])
            end
        end
        local r = ctx.ctl:must(req)
        render(ctx, r, function()
            printf("banned %s for %s\n", addr, fmt_duration(r.remaining_s))
        end)
        return EXIT_OK
    end,
}

verb {
    name = "unban", summary = "lift a ban",
    usage = "unban ADDR",
    help = "Lifts the ban of an IP.",
    run = function(ctx, args)
        local addr = addr_arg(ctx, args)
        local r = ctx.ctl:must({ cmd = "unban", addr = addr })
        render(ctx, r, function() printf("unbanned %s\n", addr) end)
        return EXIT_OK
    end,
}

verb {
    name = "clearbans", summary = "lift every ban",
    usage = "clearbans",
    help = "Lifts every ban (and forgets how often each IP was banned).",
    run = function(ctx)
        local r = ctx.ctl:must({ cmd = "clearbans" })
        render(ctx, r, function() printf("cleared %s active bans\n", fmt_num(r.cleared)) end)
        return EXIT_OK
    end,
}

verb {
    name = "strikes", summary = "misbehaviour counts per IP",
    usage = "strikes",
    help = "Misbehaviour counted per IP since the node started, by kind.",
    run = function(ctx)
        local r = ctx.ctl:must({ cmd = "strikes" })
        render(ctx, r, function()
            if #(r.strikes or {}) == 0 then
                out:write("no strikes\n")
                return
            end
            local kinds = { "magic", "version", "handshake", "frame", "message" }
            local cols = { { "IP", function(x) return x.ip end } }
            for _, k in ipairs(kinds) do
                cols[#cols + 1] = { k:upper(), function(x) return fmt_num(x[k]) end, true }
            end
            print_table(r.strikes, cols)
        end)
        return EXIT_OK
    end,
}

verb {
    name = "connect", summary = "dial an address once",
    usage = "connect ADDR",
    help = "Dials IP:port once (not redialed after a loss; see addnode).",
    run = function(ctx, args)
        local addr = addr_arg(ctx, args, "IP:port")
        local r = ctx.ctl:must({ cmd = "connect", addr = addr })
        render(ctx, r, function() printf("dialing %s\n", addr) end)
        return EXIT_OK
    end,
}

verb {
    name = "disconnect", summary = "close connections by address or node id",
    usage = "disconnect ADDR|ID",
    help = "Closes the connections with an address (IP: every port; IP:port: that one) or a "
        .. "node id (full, or a prefix of at least 8 hex digits as `peers` shows). A "
        .. "persistent peer is redialed after its reconnect delay.",
    run = function(ctx, args)
        local what = addr_arg(ctx, args, "ADDR or ID")
        local req = { cmd = "disconnect" }
        if is_node_id(what) and not what:find("[.:]") then
            local id = what:lower()
            if #id < 64 then -- a prefix: find the full id among the peers
                local matches = {}
                for _, p in ipairs(ctx.ctl:must({ cmd = "peers", all = true }).peers or {}) do
                    if p.id and p.id:sub(1, #id) == id then matches[p.id] = true end
                end
                local list = {}
                for full in pairs(matches) do list[#list + 1] = full end
                if #list == 0 then fail(EXIT_REFUSED, "no connected peer has an id starting %s", id) end
                if #list > 1 then fail(EXIT_REFUSED, "%s matches %d peers: give more digits", id, #list) end
                id = list[1]
            end
            req.id = id
        else
            req.addr = what
        end
        local r = ctx.ctl:must(req)
        render(ctx, r, function() printf("closed %s connection%s\n", fmt_num(r.closed),
            r.closed == 1 and "" or "s") end)
        return EXIT_OK
    end,
}

verb {
    name = "addnode", summary = "keep a peer connected, across restarts",
    usage = "addnode ADDR [add|remove|onetry]",
    help = "add (default): keeps IP:port connected, redialed with backoff after every loss, "
        .. "and stored so it is dialed again after a restart. remove: stops that (an open "
        .. "connection stays). onetry: dials once, like connect.",
    run = function(ctx, args)
        local addr = addr_arg(ctx, args, "IP:port")
        local action = args[2] or "add"
        if action ~= "add" and action ~= "remove" and action ~= "onetry" then
            fail(EXIT_USAGE, "addnode: action must be add, remove or onetry, not '%s'", action)
        end
        local r = ctx.ctl:must({ cmd = "addnode", addr = addr, action = action })
        render(ctx, r, function()
            local said = { add = "added %s: kept connected, also after restarts\n",
                remove = "removed %s from the added nodes\n", onetry = "dialing %s once\n" }
            printf(said[action], addr)
        end)
        return EXIT_OK
    end,
}

verb {
    name = "addednodes", summary = "peers added with addnode",
    usage = "addednodes",
    help = "The nodes added with addnode, and whether each is connected.",
    run = function(ctx)
        local r = ctx.ctl:must({ cmd = "addednodes" })
        render(ctx, r, function()
            if #(r.nodes or {}) == 0 then
                out:write("no added nodes\n")
                return
            end
            print_table(r.nodes, {
                { "ADDR", function(x) return x.addr end },
                { "CONNECTED", function(x) return x.connected and "yes" or "no" end },
            })
        end)
        return EXIT_OK
    end,
}

verb {
    name = "addrs", summary = "the address table and discovery sources",
    usage = "addrs [--limit N]",
    help = "The address table discovery dials from (addresses heard of from seeds, the peer "
        .. "API, peer exchange, peers that connected): counts against the bound, each "
        .. "discovery source's state, and the entries (--limit N, default 100): where each "
        .. "came from, whether a dial to it ever worked (tried), failures, when last seen.",
    options = { limit = true },
    run = function(ctx)
        local req = { cmd = "addrs" }
        if ctx.options.limit then
            req.limit = tonumber(ctx.options.limit)
            if not req.limit then fail(EXIT_USAGE, "addrs: --limit needs a number") end
        end
        local r = ctx.ctl:must(req)
        render(ctx, r, function()
            printf("%s addresses: %s new, %s tried (bound %s)\n", fmt_num(r.new + r.tried),
                fmt_num(r.new), fmt_num(r.tried), fmt_num(r.capacity))
            local srcs = {}
            for _, name in ipairs({ "seeds", "api", "exchange", "cache" }) do
                local x = (r.sources or {})[name] or {}
                srcs[#srcs + 1] = string.format("%s %s (%s dials, %s failures in a row)", name,
                    x.available and "available" or "unavailable", fmt_num(x.dials or 0),
                    fmt_num(x.failures or 0))
            end
            printf("sources: %s\n", table.concat(srcs, "; "))
            if #(r.addrs or {}) == 0 then return end
            print_table(r.addrs, {
                { "ADDR", function(x) return x.addr end },
                { "SOURCE", function(x) return x.source .. (x.from and (" " .. x.from) or "") end },
                { "TRIED", function(x) return x.tried and (x.anchor and "anchor" or "yes") or "no" end },
                { "OK", function(x) return fmt_num(x.successes) end, true },
                { "FAILED", function(x) return fmt_num(x.failures) end, true },
                { "SEEN", function(x)
                    return x.last_seen_s >= 0 and fmt_duration(x.last_seen_s) or "-"
                end, true },
                { "ID", function(x) return x.id and x.id:sub(1, 8) or "-" end },
            })
        end)
        return EXIT_OK
    end,
}

verb {
    name = "policy status", summary = "policy generation, hooks, breaker",
    usage = "policy status [--all]",
    help = "Policy generation in force, its files, load time, breaker, last error, and per "
        .. "hook: the file defining it, calls, errors, C-default fallbacks. --all lists hooks "
        .. "that are not defined and never called too.",
    flags = { all = true },
    run = function(ctx)
        local r = ctx.ctl:must({ cmd = "policy_status" })
        render(ctx, r, function()
            local p = r.policy or {}
            print_pairs({
                { "generation", p.active and fmt_num(p.generation) or "none (C defaults apply)" },
                { "directory", p.dir },
                { "loaded at", fmt_time(p.loaded_at) },
                { "files", fmt_num(p.files) },
                { "self-tests", fmt_num(p.self_tests) },
                { "memory", fmt_bytes(p.memory_bytes) },
                { "breaker", p.breaker == "open" and "OPEN: C defaults apply until a reload succeeds"
                    or p.breaker },
                { "reloads", string.format("%s ok, %s rejected", fmt_num(p.reloads_ok),
                    fmt_num(p.reloads_rejected)) },
                { "last error", p.last_error ~= "" and p.last_error or "-" },
            })
            local rows = {}
            for name, h in pairs(p.hooks or {}) do
                if ctx.flags.all or h.defined or (h.calls or 0) > 0 then
                    h.name = name
                    rows[#rows + 1] = h
                end
            end
            table.sort(rows, function(a, b) return a.name < b.name end)
            out:write("\n")
            print_table(rows, {
                { "HOOK", function(x) return x.name end },
                { "FILE", function(x) return x.file or "(C default)" end },
                { "CALLS", function(x) return fmt_num(x.calls) end, true },
                { "ERRORS", function(x) return fmt_num(x.errors) end, true },
                { "FALLBACKS", function(x) return fmt_num(x.fallbacks) end, true },
            })
        end)
        return EXIT_OK
    end,
}

verb {
    name = "policy reload", summary = "reload the policy now, wait for the result",
    usage = "policy reload",
    help = "Reloads the policy directory now and waits: prints the new generation, or the "
        .. "file:line error and which generation is still in force (exit 1).",
    run = function(ctx)
        local r = ctx.ctl:must({ cmd = "policy_reload" })
        render(ctx, r, function() printf("%s\n", r.result) end)
        return EXIT_OK
    end,
}

-- The timenetd binary for offline checks: $TIMENETD, next to this script, or on the PATH.
local function timenetd_path()
    local env = os.getenv("TIMENETD")
    if env and env ~= "" then return env end
    local dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$")
    if dir then
        local f = io.open(dir .. "/timenetd", "r")
        if f then
            f:close()
            return dir .. "/timenetd"
        end
    end
    return "timenetd"
end

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

verb {
    name = "policy check", summary = "load and self-test a policy dir offline",
    usage = "policy check DIR",
    help = "Loads and self-tests a policy directory offline (timenetd --check-policy DIR; "
        .. "the node need not run): 'ok' with the counts, or the file:line error (exit 1). "
        .. "With --config FILE the policies see that config's values.",
    offline = true,
    run = function(ctx, args)
        local dir = addr_arg(ctx, args, "DIR")
        local cmd = shell_quote(timenetd_path()) .. " --check-policy " .. shell_quote(dir)
        if ctx.opts.config then cmd = cmd .. " --config " .. shell_quote(ctx.opts.config) end
        local p = assert(io.popen(cmd .. " 2>&1"))
        local text = p:read("a")
        local ok, _, code = p:close()
        if code == 127 then
            fail(EXIT_REFUSED, "cannot run timenetd (set TIMENETD=/path/to/timenetd)")
        end
        if ctx.opts.json then
            print_json({ ok = ok == true, output = text })
        else
            out:write(text)
        end
        return ok and EXIT_OK or EXIT_REFUSED
    end,
}

-- The chain verbs of the node (chain, mempool, tx_submit).
verb {
    name = "chain", summary = "height, tip, recent blocks, last reorg",
    usage = "chain",
    help = "The main chain: height, tip, genesis, blocks indexed, slot length, masternodes, "
        .. "whether syncing, the last blocks (height, id, slot, time, producer, transactions) "
        .. "and the last reorganisation.",
    run = function(ctx)
        local r = ctx.ctl:must({ cmd = "chain" })
        render(ctx, r, function()
            local reorg = r.reorgs or {}
            print_pairs({
                { "height", fmt_num(r.height) }, { "tip", r.tip }, { "genesis", r.genesis },
                { "blocks indexed", fmt_num(r.blocks_indexed) },
                { "slot", r.slot_ms and fmt_duration(r.slot_ms / 1000) },
                { "masternodes", fmt_num(r.masternodes) },
                { "this node", r.masternode and "masternode" or "not a masternode" },
                { "syncing", r.syncing and "yes" or "no" },
                { "reorgs", (reorg.count or 0) == 0 and "none"
                    or string.format("%s, last %s deep: %s -> %s", fmt_num(reorg.count),
                        fmt_num(reorg.last_depth), (reorg.last_old_tip or ""):sub(1, 16),
                        (reorg.last_new_tip or ""):sub(1, 16)) },
            })
            if #(r.recent or {}) > 0 then
                out:write("\n")
                print_table(r.recent, {
                    { "HEIGHT", function(x) return fmt_num(x.height) end, true },
                    { "ID", function(x) return (x.id or ""):sub(1, 16) end },
                    { "SLOT", function(x) return fmt_num(x.slot) end, true },
                    { "TIME", function(x) return x.time_ms and fmt_time(x.time_ms / 1000) end },
                    { "PRODUCER", function(x) return (x.producer or ""):sub(1, 8) end },
                    { "TXS", function(x) return fmt_num(x.txs) end, true },
                })
            end
        end)
        return EXIT_OK
    end,
}

verb {
    name = "mempool", summary = "pending transactions",
    usage = "mempool [--ids] [--limit N]",
    help = "Transactions waiting for a block: count and bytes against their bounds; --ids "
        .. "lists their ids, newest first (--limit N, default 1000).",
    flags = { ids = true },
    options = { limit = true },
    run = function(ctx)
        local req = { cmd = "mempool", ids = ctx.flags.ids or nil }
        if ctx.options.limit then
            req.ids = true
            req.limit = tonumber(ctx.options.limit)
            if not req.limit then fail(EXIT_USAGE, "mempool: --limit needs a number") end
        end
        local r = ctx.ctl:must(req)
        render(ctx, r, function()
            printf("%s transactions, %s (bounds: %s transactions, %s)\n", fmt_num(r.txs),
                fmt_bytes(r.bytes), fmt_num(r.max_txs), fmt_bytes(r.max_bytes))
            for _, id in ipairs(r.ids or {}) do out:write(id, "\n") end
        end)
        return EXIT_OK
    end,
}

verb {
    name = "tx submit", summary = "submit a signed transaction",
    usage = "tx submit FILE|-",
    help = "Submits one signed transaction, read from FILE or standard input ('-'): its bytes, "
        .. "or the same as hex text. The node validates it and relays it like one from a peer; "
        .. "prints its id, or why it was refused (exit 1).",
    run = function(ctx, args)
        local file = addr_arg(ctx, args, "FILE or -")
        local f, err = io.stdin, nil
        if file ~= "-" then f, err = io.open(file, "rb") end
        if not f then fail(EXIT_USAGE, "tx submit: %s", err) end
        local data = f:read("a") or ""
        if f ~= io.stdin then f:close() end
        local text = data:gsub("%s+", "")
        local hex = (#text > 0 and #text % 2 == 0 and text:match("^%x+$")) and text
            or data:gsub(".", function(c) return string.format("%02x", c:byte()) end)
        local r = ctx.ctl:must({ cmd = "tx_submit", hex = hex })
        render(ctx, r, function() printf("submitted %s\n", r.id) end)
        return EXIT_OK
    end,
}

verb {
    name = "config reload", summary = "re-read the config file, apply live keys",
    usage = "config reload",
    help = "Re-reads the node's config file. Keys that can change at run time (limits, "
        .. "intervals, timeouts, whitelist, log level and file, seeds, persistent peers, "
        .. "feature flags, policy budgets and ban durations) apply at once and the policy is "
        .. "reloaded so tn.config follows; other changed keys are listed as needing a restart "
        .. "(the old values stay in force). A file with an error changes nothing: the "
        .. "file:line error is printed (exit 1).",
    run = function(ctx)
        local r = ctx.ctl:must({ cmd = "config_reload" })
        render(ctx, r, function()
            local applied, restart = r.applied or {}, r.restart_required or {}
            if #applied == 0 and #restart == 0 then
                printf("%s: no changes\n", r.file or "config")
                return
            end
            if #applied > 0 then printf("applied: %s\n", table.concat(applied, ", ")) end
            if r.policy_reload then out:write("policy reloaded so tn.config follows\n") end
            if #restart > 0 then
                printf("changed but needing a restart (old values still in force): %s\n",
                    table.concat(restart, ", "))
            end
        end)
        return EXIT_OK
    end,
}

verb {
    name = "config show", summary = "the config in force",
    usage = "config show",
    help = "The configuration in force, every key with its documentation, as a config file.",
    run = function(ctx)
        local r = ctx.ctl:must({ cmd = "config" })
        render(ctx, r, function() out:write(r.config) end)
        return EXIT_OK
    end,
}

verb {
    name = "metrics", summary = "Prometheus text exposition",
    usage = "metrics",
    help = "Every metric in the Prometheus text format (what http://METRICS_LISTEN/metrics "
        .. "serves); --json gives {name: value}.",
    run = function(ctx)
        if ctx.opts.json then
            local r = ctx.ctl:must({ cmd = "metrics" })
            r.ok = nil
            print_json(r)
        else
            out:write(ctx.ctl:must({ cmd = "metrics", format = "prometheus" }).text)
        end
        return EXIT_OK
    end,
}

verb {
    name = "stop", summary = "graceful shutdown",
    usage = "stop",
    help = "Graceful shutdown: sessions closed, policy state and store flushed.",
    run = function(ctx)
        local r = ctx.ctl:must({ cmd = "stop" })
        render(ctx, r, function() out:write("timenetd is stopping\n") end)
        return EXIT_OK
    end,
}

verb {
    name = "raw", summary = "send one JSON request as is",
    usage = "raw JSON",
    help = "Sends one request object as is, e.g. timenetctl raw '{\"cmd\":\"blocked\"}', and "
        .. "prints the reply (every verb of the control socket, including test-only ones).",
    run = function(ctx, args)
        local req = json.decode(addr_arg(ctx, args, "JSON"))
        if type(req) ~= "table" or type(req.cmd) ~= "string" then
            fail(EXIT_USAGE, "raw: give a JSON object with a \"cmd\" string")
        end
        local r = ctx.ctl:call(req)
        print_json(r)
        return r.ok and EXIT_OK or EXIT_REFUSED
    end,
}

---------------------------------------------------------------------------- help and main

local function usage_text()
    local lines = {
        "usage: timenetctl [options] VERB [ARGS]   (timenetctl help VERB, timenetctl VERB --help)",
        "",
        "options:",
        "  -d, --datadir DIR    the node's data_dir: its control socket is DIR/control.sock",
        "  -s, --socket PATH    the control socket itself",
        "  -c, --config FILE    the node's config file: data_dir is read from it",
        "                       (default socket: ./var/control.sock, else",
        "                        /var/lib/timenet/control.sock)",
        "  -j, --json           print the node's JSON reply instead of tables",
        "  -t, --timeout SEC    seconds to wait for an answer (default " .. DEFAULT_TIMEOUT .. ")",
        "  -h, --help           this help; --version the version",
        "",
        "verbs:",
    }
    for _, v in ipairs(VERBS) do
        lines[#lines + 1] = string.format("  %-36s %s", v.usage, v.summary)
    end
    lines[#lines + 1] = ""
    lines[#lines + 1] = "exit status: 0 done, 1 refused or failed, 2 usage, 3 node unreachable"
    return table.concat(lines, "\n") .. "\n"
end

local function verb_help(v)
    local text, wrapped, lineno = v.help, {}, ""
    for word in text:gmatch("%S+") do
        if #lineno + #word + 1 > 90 then
            wrapped[#wrapped + 1] = lineno
            lineno = word
        else
            lineno = lineno == "" and word or (lineno .. " " .. word)
        end
    end
    wrapped[#wrapped + 1] = lineno
    return "usage: timenetctl [options] " .. v.usage .. "\n\n  " .. table.concat(wrapped, "\n  ")
        .. "\n"
end

verb {
    name = "help", summary = "this list, or one verb's help",
    usage = "help [VERB]",
    help = "This list, or one verb's help.",
    offline = true,
    run = function(_, args)
        if #args == 0 then
            out:write(usage_text())
            return EXIT_OK
        end
        local v = BY_NAME[table.concat(args, " ")]
        if not v then fail(EXIT_USAGE, "no verb '%s' (try: timenetctl help)", table.concat(args, " ")) end
        out:write(verb_help(v))
        return EXIT_OK
    end,
}

local OPTS_WITH_VALUE = { datadir = "datadir", socket = "socket", config = "config",
    timeout = "timeout", d = "datadir", s = "socket", c = "config", t = "timeout" }
local FLAGS = { json = "json", j = "json", help = "help", h = "help", version = "version" }

-- Options of verbs that take a value (--reason TEXT), over all verbs: known before parsing.
local function verb_option_takes_value(name)
    for _, v in ipairs(VERBS) do
        if (v.options or {})[name] then return true end
    end
    return false
end

-- Splits argv into global options, words (the verb and its arguments) and the verb's own
-- --flags and --options VALUE. Options may come before or after the verb; "--" ends them.
local function parse(argv)
    local opts = { timeout = DEFAULT_TIMEOUT }
    local words, vopts = {}, {}
    local i = 1
    while i <= #argv do
        local a = argv[i]
        local key = a:match("^%-%-([%w-]+)$") or a:match("^%-(%a)$")
        if a == "--" then
            for j = i + 1, #argv do words[#words + 1] = argv[j] end
            break
        elseif key and OPTS_WITH_VALUE[key] then
            if not argv[i + 1] then fail(EXIT_USAGE, "%s needs a value", a) end
            opts[OPTS_WITH_VALUE[key]] = argv[i + 1]
            i = i + 1
        elseif key and FLAGS[key] then
            opts[FLAGS[key]] = true
        elseif key and #key > 1 then
            local value = true
            if verb_option_takes_value(key) then
                value = argv[i + 1]
                if not value then fail(EXIT_USAGE, "--%s needs a value", key) end
                i = i + 1
            end
            vopts[#vopts + 1] = { name = key, value = value }
        else
            words[#words + 1] = a
        end
        i = i + 1
    end
    opts.timeout = tonumber(opts.timeout)
    if not opts.timeout or opts.timeout <= 0 then fail(EXIT_USAGE, "--timeout needs seconds > 0") end
    return opts, words, vopts
end

local function find_verb(words)
    local v = BY_NAME[(words[1] or "") .. " " .. (words[2] or "")]
    if v then return v, 2 end
    v = BY_NAME[words[1]]
    if v then return v, 1 end
    local group = {}
    for _, x in ipairs(VERBS) do
        if x.name:match("^(%S+) ") == words[1] then group[#group + 1] = x.usage end
    end
    if #group > 0 then fail(EXIT_USAGE, "%s what? one of: %s", words[1], table.concat(group, "; ")) end
    fail(EXIT_USAGE, "unknown verb '%s' (try: timenetctl help)", words[1])
end

local function main(argv)
    local opts, words, vopts = parse(argv)
    if opts.version then
        out:write("timenetctl " .. VERSION .. "\n")
        return EXIT_OK
    end
    if #words == 0 then
        (opts.help and out or io.stderr):write(usage_text())
        return opts.help and EXIT_OK or EXIT_USAGE
    end
    local v, nwords = find_verb(words)
    if opts.help then
        out:write(verb_help(v))
        return EXIT_OK
    end
    local args = table.move(words, nwords + 1, #words, 1, {})
    local flags, options = {}, {}
    for _, o in ipairs(vopts) do
        if (v.options or {})[o.name] then
            options[o.name] = o.value
        elseif (v.flags or {})[o.name] then
            flags[o.name] = true
        else
            fail(EXIT_USAGE, "%s: unknown option --%s (try: timenetctl %s --help)", v.name, o.name,
                v.name)
        end
    end
    local ctx = { opts = opts, verb = v, flags = flags, options = options }
    if not v.offline then ctx.ctl = Ctl.new(opts) end
    return v.run(ctx, args)
end

local ok, res = pcall(main, arg or {})
if ok then os.exit(res or EXIT_OK) end
if getmetatable(res) == Fail then
    io.stderr:write("timenetctl: ", res.msg, "\n")
    os.exit(res.code)
end
io.stderr:write("timenetctl: internal error: ", tostring(res), "\n")
os.exit(EXIT_REFUSED)
