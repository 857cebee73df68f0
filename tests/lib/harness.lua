-- The multi-node test harness: starts real timenetd processes with generated configs on
-- 127.A.B.C addresses, own data dirs and logs, drives them through the control socket,
-- waits for conditions with deadlines, kills/restarts nodes and always cleans up.
-- Used by every integration spec, bench and the demo (one harness, not one per suite).
--
--   local H = require("harness")
--   local net = H.net()                       -- a fresh temp dir and address block
--   local a = net:node("a", { persistent_peers = {...} })
--   a:start(); a:wait_log("Connected to peer", 5)
--   net:cleanup()                             -- in after_each / finally: kills every process
local uv = require("luv")
local json = require("dkjson")
local unix = require("socket.unix")

local H = {}

H.BUILD = os.getenv("BUILD") or "build"
H.BIN = os.getenv("TIMENETD") or (H.BUILD .. "/timenetd")

-- Test-scale defaults: every interval short so specs run in seconds (DESIGN.md: every
-- duration can be set to test scale).
H.DEFAULTS = {
    heartbeat_interval = 1,
    pong_deadline = 0.5,
    handshake_timeout = 3,
    connection_timeout = 3,
    reconnect_delay = 0.2,
    reconnect_cooldown = 5,
    status_interval = 60,
    store_flush_interval = 0.05,
    allow_local_addresses = true,
    min_peers = 0, -- discovery off: a spec's topology is what it declares (discovery specs set it)
    log_level = "info",
    metrics_listen = "", -- "auto" (listen port + 1) could take another node's port; specs that
                         -- scrape set an address from H.free_port
    -- at test scale nodes restart and redial many times a minute: seed §12/§13's per-minute
    -- attempt limit is flood_spec's subject (tests/lib/hostilekit.lua sets the real numbers)
    connection_attempts_free = 1000000,
    connection_attempts_max = 1000000,
}

local live = {} -- every process started, for the last-resort cleanup below

local function now() return uv.hrtime() / 1e9 end
H.now = now

local function sh(cmd)
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    p:close()
    return (out:gsub("%s+$", ""))
end
H.sh = sh

local function read_file(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end
H.read_file = read_file

local function write_file(path, text)
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
end
H.write_file = write_file

-- Serialises a config table as an assignment-style Lua config file.
function H.config_text(cfg)
    local keys = {}
    for k in pairs(cfg) do keys[#keys + 1] = k end
    table.sort(keys)
    local out = {}
    for _, k in ipairs(keys) do
        local v = cfg[k]
        local t = type(v)
        local s
        if t == "string" then
            s = string.format("%q", v)
        elseif t == "number" or t == "boolean" then
            s = tostring(v)
        elseif t == "table" then
            local items = {}
            for i, x in ipairs(v) do
                items[i] = type(x) == "string" and string.format("%q", x) or tostring(x)
            end
            s = "{ " .. table.concat(items, ", ") .. " }"
        else
            error("config value of type " .. t)
        end
        out[#out + 1] = k .. " = " .. s
    end
    return table.concat(out, "\n") .. "\n"
end

-- Polls fn every 20 ms (running the luv loop so exits are reaped) until it returns a truthy
-- value, which is returned; after `timeout` seconds raises an error naming `what`.
function H.wait(fn, timeout, what)
    local deadline = now() + (timeout or 10)
    local last_err
    repeat
        uv.run("nowait")
        local ok, v = pcall(fn)
        if ok and v then return v end
        if not ok then last_err = v end
        uv.sleep(20)
    until now() > deadline
    error(string.format("timed out after %.1f s waiting for %s%s", timeout or 10,
        what or "condition", last_err and (" (last error: " .. tostring(last_err) .. ")") or ""), 2)
end

function H.sleep(seconds)
    local deadline = now() + seconds
    while now() < deadline do
        uv.run("nowait")
        uv.sleep(10)
    end
end

-- A free TCP port on ip (asks the kernel, then releases it).
function H.free_port(ip)
    local socket = require("socket")
    local s = assert(socket.tcp())
    assert(s:bind(ip, 0))
    local _, port = s:getsockname()
    s:close()
    return tonumber(port)
end

---------------------------------------------------------------------------- nodes

local Node = {}
Node.__index = Node

function Node:config_path() return self.dir .. "/timenet.conf" end

function Node:write_config()
    write_file(self:config_path(), H.config_text(self.cfg))
end

-- Starts the process. opts.args replaces the arguments (default: --config FILE); opts.env
-- = { NAME = value } adds environment variables (the process runs through env(1));
-- opts.prefix (or node.prefix) = a command that execs the node, e.g. { "ip", "netns", "exec",
-- NS } (the pid stays the node's: such wrappers exec).
function Node:start(opts)
    assert(not self:running(), self.name .. " is already running")
    opts = opts or {}
    self:write_config()
    local fd = assert(uv.fs_open(self.log_path, "a", 420))
    self.exit_code, self.exit_signal = nil, nil
    local args = opts.args or { "--config", self:config_path() }
    local file = H.BIN
    if opts.env then
        local env_args = {}
        for k, v in pairs(opts.env) do env_args[#env_args + 1] = k .. "=" .. v end
        env_args[#env_args + 1] = H.BIN
        for _, a in ipairs(args) do env_args[#env_args + 1] = a end
        file, args = "env", env_args
    end
    local prefix = opts.prefix or self.prefix
    if prefix then
        local wrapped = {}
        for i = 2, #prefix do wrapped[#wrapped + 1] = prefix[i] end
        wrapped[#wrapped + 1] = file
        for _, a in ipairs(args) do wrapped[#wrapped + 1] = a end
        file, args = prefix[1], wrapped
    end
    local handle, pid = uv.spawn(file, { args = args, stdio = { nil, fd, fd } },
        function(code, signal)
            self.exit_code, self.exit_signal = code, signal
            live[self] = nil
            if self.handle then self.handle:close() end
            self.handle = nil
        end)
    uv.fs_close(fd)
    assert(handle, "cannot spawn " .. H.BIN .. ": " .. tostring(pid))
    self.handle, self.pid = handle, pid
    self.starts = self.starts + 1
    live[self] = true
    if opts.wait ~= false then
        H.wait(function()
            if self.exit_code then error(self.name .. " exited with " .. self.exit_code) end
            return self:ctl_try({ cmd = "status" })
        end, opts.timeout or 10, self.name .. " to answer on its control socket")
    end
    return self
end

function Node:running() return self.handle ~= nil and self.exit_code == nil end

-- Sends a signal ("sigterm", "sigkill", ...) without waiting.
function Node:signal(sig)
    if self.handle then self.handle:kill(sig) end
end

-- Stops the process: SIGTERM, then SIGKILL after `grace` seconds. Returns the exit code.
function Node:stop(grace)
    if not self:running() then return self.exit_code end
    self:signal("sigterm")
    local ok = pcall(H.wait, function() return self.exit_code ~= nil end, grace or 10, "exit")
    if not ok then
        self:signal("sigkill")
        H.wait(function() return self.exit_code ~= nil end, 5, self.name .. " to die")
    end
    return self.exit_code
end

-- kill -9: no shutdown path runs.
function Node:kill()
    if not self:running() then return end
    self:signal("sigkill")
    H.wait(function() return self.exit_code ~= nil end, 5, self.name .. " to die")
end

function Node:restart(opts)
    self:stop()
    return self:start(opts)
end

-- One control request; returns the decoded reply or nil, error.
function Node:ctl_try(req)
    local c = unix()
    c:settimeout(5)
    local ok, err = c:connect(self.cfg.data_dir .. "/control.sock")
    if not ok then
        c:close()
        return nil, err
    end
    c:send(json.encode(req) .. "\n")
    local line, rerr = c:receive("*l")
    c:close()
    if not line then return nil, rerr end
    return json.decode(line)
end

-- One control request that must succeed at the transport level (ok may still be false).
function Node:ctl(req)
    if type(req) == "string" then req = { cmd = req } end
    local r, err = self:ctl_try(req)
    if not r then error(self.name .. ": control request " .. req.cmd .. " failed: " .. tostring(err), 2) end
    return r
end

function Node:status() return self:ctl("status") end

-- Active sessions (rows of the peers verb); all=true adds handshakes in progress.
function Node:peers(all)
    return self:ctl({ cmd = "peers", all = all or nil }).peers
end

-- The active session row with the node `other` (a Node), or nil.
function Node:peer_row(other)
    local id = other:id()
    for _, p in ipairs(self:peers()) do
        if p.id == id then return p end
    end
end

function Node:id()
    if not self._id then self._id = self:status().id end
    return self._id
end

function Node:log() return read_file(self.log_path) or "" end

-- Number of logged events containing `text` (plain text, not a pattern). A folded summary
-- "... (repeated N more times)" counts as the N events it stands for.
function Node:count(text)
    local n = 0
    for line in self:log():gmatch("[^\n]+") do
        if line:find(text, 1, true) then
            n = n + (tonumber(line:match("%(repeated (%d+) more times%)$")) or 1)
        end
    end
    return n
end

function Node:wait_log(text, timeout, times)
    times = times or 1
    return H.wait(function() return self:count(text) >= times end, timeout or 10,
        string.format("%s to log %q%s", self.name, text, times > 1 and (" x" .. times) or ""))
end

-- Waits until this node has an active, established session with every node in `others`.
function Node:wait_connected(others, timeout)
    H.wait(function()
        for _, o in ipairs(others) do
            local row = self:peer_row(o)
            if not (row and row.hello) then return false end
        end
        return true
    end, timeout or 10, self.name .. " to be connected to " .. #others .. " peers")
end

-- Resident memory of the running process in KiB (VmRSS), or nil.
function Node:rss_kb()
    if not self:running() then return nil end
    local s = read_file("/proc/" .. self.pid .. "/status") or ""
    return tonumber(s:match("VmRSS:%s*(%d+)"))
end

function Node:metric(name)
    return self:ctl("metrics").metrics[name] or 0
end

---------------------------------------------------------------------------- networks

local Net = {}
Net.__index = Net

local net_counter = 0

-- A group of nodes sharing one temp dir and one 127.X.Y.0/24 block (each node its own IP).
-- opts.dir: a directory of the caller's instead (created, kept by cleanup: the demo's run
-- dir); opts.block: the "127.X.Y" block to use.
function H.net(opts)
    opts = opts or {}
    net_counter = net_counter + 1
    local self = setmetatable({ nodes = {}, opts = opts }, Net)
    if opts.dir then
        os.execute("mkdir -p '" .. opts.dir .. "'")
        self.dir = opts.dir
    else
        self.dir = sh("mktemp -d /tmp/tn-test.XXXXXX")
    end
    -- A block unlikely to collide with other specs running now: derived from pid and counter.
    local seed = (tonumber(sh("echo $PPID")) or 0) * 7 + net_counter * 13 + os.time()
    self.block = opts.block or string.format("127.%d.%d", 1 + seed % 250, 1 + (seed // 250) % 250)
    return self
end

-- Declares a node (not started). cfg overrides H.DEFAULTS and the generated keys.
function Net:node(name, cfg)
    local i = #self.nodes + 1
    local ip = cfg and cfg.ip or string.format("%s.%d", self.block, i + 1)
    local dir = self.dir .. "/" .. name
    os.execute("mkdir -p " .. dir)
    local c = {}
    for k, v in pairs(H.DEFAULTS) do c[k] = v end
    c.node_name = name
    c.data_dir = dir .. "/data"
    -- an explicit listen address is taken as is (an IP that exists only in a namespace)
    c.listen = cfg and cfg.listen or string.format("%s:%d", ip, H.free_port(ip))
    for k, v in pairs(cfg or {}) do
        if k ~= "ip" then c[k] = v end
    end
    local n = setmetatable({ name = name, ip = ip, dir = dir, cfg = c, net = self,
        log_path = dir .. "/node.log", starts = 0 }, Node)
    self.nodes[#self.nodes + 1] = n
    return n
end

function Node:addr() return self.cfg.listen end

-- Declares and starts n nodes named prefix1..prefixN; cfg_fn(i) gives extra config.
function Net:nodes_up(n, prefix, cfg_fn)
    local list = {}
    for i = 1, n do list[i] = self:node((prefix or "n") .. i, cfg_fn and cfg_fn(i, list) or nil) end
    for _, x in ipairs(list) do x:start() end
    return list
end

-- Prints every node's log (for a failing test), then kills everything and removes the dir.
function Net:cleanup(keep_logs)
    for _, n in ipairs(self.nodes) do
        if n:running() then
            n:signal("sigkill")
            pcall(H.wait, function() return not n:running() end, 5, "exit")
        end
    end
    if keep_logs then
        for _, n in ipairs(self.nodes) do
            io.stderr:write("----- log of " .. n.name .. " -----\n" .. n:log())
        end
    end
    if self.dir and not self.opts.dir and self.dir:match("^/tmp/tn%-test%.") then
        os.execute("rm -rf " .. self.dir)
    end
    self.dir = nil
end

-- Runs body(net) and always cleans up; on failure prints the logs and re-raises.
function H.with_net(body, opts)
    local net = H.net(opts)
    local ok, err = xpcall(body, debug.traceback, net)
    net:cleanup(not ok)
    if not ok then error(err, 0) end
end

-- Last resort: a spec that dies without cleanup still kills what it started.
setmetatable(live, { __mode = "k" })
H._sentinel = setmetatable({}, {
    __gc = function()
        for n in pairs(live) do
            if n.pid then os.execute("kill -9 " .. n.pid .. " 2>/dev/null") end
        end
    end,
})

return H
