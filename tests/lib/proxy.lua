-- A loopback TCP man-in-the-middle for tests. It runs in its own lua5.4 process (so it
-- forwards both ways while the test blocks in a socket call or a sleep) and is driven over
-- a control connection. It follows the wire format: the first 48 bytes each way are the
-- handshake flight, then frames (4-byte big-endian length + ciphertext), forwarded whole,
-- so that on command it can tamper with exactly one frame:
--
--   local Proxy = require("proxy")
--   local px = Proxy.start({ listen = "127.1.2.50", target = "127.1.2.2:4000",
--                            src = "127.1.2.51" })  -- src: bind the upstream side
--   px.addr                      -- "127.1.2.50:PORT": dial this instead of the target
--   px:stats()                   -- { conns=, c2s=frames, s2c=frames, open=bool }
--   px:flip(dir [, offset])      -- flip the low bit of byte `offset` (default 4: the first
--                                -- ciphertext byte) of the next frame in dir
--   px:replay(dir [, back])      -- send again, now, the frame forwarded `back` frames ago
--                                -- (default 1: the last one)
--   px:swap(dir)                 -- hold the next frame, forward it after the one after it
--   px:truncate(dir [, keep [, "close"|"silence"]])  -- forward only `keep` bytes (default
--                                -- half) of the next frame, then close both sides, or keep
--                                -- them open and forward nothing more in dir
--   px:drop(dir)                 -- swallow the next frame
--   px:inject(dir, bytes)        -- send raw bytes now (at a frame boundary)
--   px:wait(event [, timeout])   -- waits for "flipped", "replayed", "swapped", "truncated",
--                                -- "dropped", "closed", "accepted"; returns its words
--   px:stop()
-- dir is "c2s" (from the dialing side to the target) or "s2c". Commands act on the most
-- recent connection. Every command returns true, or nil, reason.
local socket = require("socket")

local FLIGHT = 48
local MAX_FRAME = 64 * 1024 * 1024 + 16 -- beyond any node's max_frame_size: pass through raw

---------------------------------------------------------------------------- child process

local function child(ctl_port, listen_ip, target_ip, target_port, src, lifetime)
    local ctl = assert(socket.connect("127.0.0.1", tonumber(ctl_port)))
    local lsock = assert(socket.bind(listen_ip, 0))
    local _, lport = lsock:getsockname()
    ctl:send("ready " .. lport .. "\n")
    ctl:settimeout(0)
    lsock:settimeout(0)
    local stop_at = socket.gettime() + tonumber(lifetime)
    local conns, out, ctl_in = {}, {}, ""
    local nconns = 0

    local function event(...)
        ctl:settimeout(5)
        ctl:send("ev " .. table.concat({ ... }, " ") .. "\n")
        ctl:settimeout(0)
    end

    local function queue(sock, bytes)
        if #bytes > 0 then out[sock] = (out[sock] or "") .. bytes end
    end

    local function close_conn(c, who)
        if c.closed then return end
        c.closed = true
        for _, s in ipairs({ c.cli, c.srv }) do
            -- last bytes first (a truncated frame must arrive before the close)
            local pending = out[s]
            if pending then
                s:settimeout(1)
                s:send(pending)
            end
            out[s] = nil
            s:close()
        end
        event("closed", who)
    end

    local function on_frame(c, d, frame)
        local idx = d.frames
        d.frames = d.frames + 1
        if d.silent then return end
        local act = table.remove(d.actions, 1)
        if not act then
            queue(d.to, frame)
        elseif act.kind == "flip" then
            local off = math.min(act.arg or 4, #frame - 1)
            local b = frame:byte(off + 1) ~ 1
            queue(d.to, frame:sub(1, off) .. string.char(b) .. frame:sub(off + 2))
            event("flipped", d.name, idx)
        elseif act.kind == "swap" then
            if not d.held then
                d.held = frame
                table.insert(d.actions, 1, act) -- still armed for the frame after
                return
            end
            queue(d.to, frame)
            queue(d.to, d.held)
            d.held = nil
            event("swapped", d.name, idx - 1, idx)
        elseif act.kind == "truncate" then
            local keep = act.arg or (#frame // 2)
            keep = math.max(1, math.min(keep, #frame - 1))
            queue(d.to, frame:sub(1, keep))
            event("truncated", d.name, idx, keep, #frame)
            if act.mode == "close" then
                close_conn(c, "proxy")
                return
            end
            d.silent = true
        elseif act.kind == "drop" then
            event("dropped", d.name, idx)
        end
        d.history[#d.history + 1] = frame
        if #d.history > 16 then table.remove(d.history, 1) end
    end

    -- Moves complete pieces of d.inbuf to the other side.
    local function process(c, d)
        while not c.closed do
            if d.hs_left > 0 then
                local n = math.min(d.hs_left, #d.inbuf)
                if n == 0 then return end
                if not d.silent then queue(d.to, d.inbuf:sub(1, n)) end
                d.inbuf = d.inbuf:sub(n + 1)
                d.hs_left = d.hs_left - n
            elseif d.raw then
                if not d.silent then queue(d.to, d.inbuf) end
                d.inbuf = ""
                return
            else
                if #d.inbuf < 4 then return end
                local len = string.unpack(">I4", d.inbuf)
                if len > MAX_FRAME then
                    d.raw = true
                else
                    if #d.inbuf < 4 + len then return end
                    local frame = d.inbuf:sub(1, 4 + len)
                    d.inbuf = d.inbuf:sub(5 + len)
                    on_frame(c, d, frame)
                end
            end
        end
    end

    local function new_dir(name, from, to)
        return { name = name, from = from, to = to, inbuf = "", hs_left = FLIGHT, frames = 0,
            history = {}, actions = {} }
    end

    local function accept()
        local cli = lsock:accept()
        if not cli then return end
        local srv = socket.tcp()
        if src ~= "" then srv:bind(src, 0) end
        srv:settimeout(5)
        local ok, err = srv:connect(target_ip, tonumber(target_port))
        if not ok then
            cli:close()
            srv:close()
            event("connect_failed", tostring(err):gsub("%s", "_"))
            return
        end
        cli:settimeout(0)
        srv:settimeout(0)
        cli:setoption("tcp-nodelay", true)
        srv:setoption("tcp-nodelay", true)
        nconns = nconns + 1
        local c = { cli = cli, srv = srv, id = nconns }
        c.c2s = new_dir("c2s", cli, srv)
        c.s2c = new_dir("s2c", srv, cli)
        conns[#conns + 1] = c
        event("accepted", nconns)
    end

    local function current()
        local c = conns[#conns]
        if c and not c.closed then return c end
    end

    local function command(line)
        local words = {}
        for w in line:gmatch("%S+") do words[#words + 1] = w end
        local cmd, dname = words[1], words[2]
        if cmd == "quit" then return "quit" end
        local c = current()
        if cmd == "stats" then
            local last = conns[#conns]
            return string.format("ok %d %d %d %s", nconns, last and last.c2s.frames or 0,
                last and last.s2c.frames or 0, c and "open" or "none")
        end
        if not c then return "err no open connection" end
        local d = c[dname or ""]
        if not d then return "err direction must be c2s or s2c" end
        if cmd == "flip" or cmd == "swap" or cmd == "truncate" or cmd == "drop" then
            d.actions[#d.actions + 1] = { kind = cmd, arg = tonumber(words[3]), mode = words[4] }
            return "ok"
        elseif cmd == "replay" then
            local back = tonumber(words[3]) or 1
            local f = d.history[#d.history - back + 1]
            if not f then return "err no frame to replay" end
            queue(d.to, f)
            event("replayed", d.name, #f)
            return "ok"
        elseif cmd == "inject" then
            local hex = words[3] or ""
            queue(d.to, (hex:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end)))
            return "ok"
        end
        return "err unknown command " .. tostring(cmd)
    end

    local function read_from(c, d)
        local data, err, partial = d.from:receive(65536)
        local got = data or partial
        if got and #got > 0 then
            d.inbuf = d.inbuf .. got
            process(c, d)
        end
        if not data and err ~= "timeout" and not c.closed then
            close_conn(c, d.name == "c2s" and "client" or "server")
        end
    end

    while socket.gettime() < stop_at do
        local rset, wset = { ctl, lsock }, {}
        for _, c in ipairs(conns) do
            if not c.closed then
                rset[#rset + 1] = c.cli
                rset[#rset + 1] = c.srv
            end
        end
        for s in pairs(out) do wset[#wset + 1] = s end
        local readable, writable = socket.select(rset, wset, 0.5)
        for _, s in ipairs(writable) do
            local pending = out[s]
            if pending then
                local last, _, partial = s:send(pending)
                local n = last or partial or 0
                out[s] = n < #pending and pending:sub(n + 1) or nil
            end
        end
        for _, s in ipairs(readable) do
            if s == ctl then
                local data, err, partial = ctl:receive(4096)
                ctl_in = ctl_in .. (data or partial or "")
                if not data and err == "closed" then return end
                while true do
                    local line, rest = ctl_in:match("^([^\n]*)\n(.*)$")
                    if not line then break end
                    ctl_in = rest
                    local reply = command(line)
                    if reply == "quit" then return end
                    ctl:settimeout(5)
                    ctl:send(reply .. "\n")
                    ctl:settimeout(0)
                end
            elseif s == lsock then
                accept()
            else
                for _, c in ipairs(conns) do
                    if not c.closed and s == c.cli then read_from(c, c.c2s) end
                    if not c.closed and s == c.srv then read_from(c, c.s2c) end
                end
            end
        end
        -- write queued bytes at once where the socket takes them
        for s, pending in pairs(out) do
            s:settimeout(0)
            local last, _, partial = s:send(pending)
            local n = last or partial or 0
            out[s] = n < #pending and pending:sub(n + 1) or nil
        end
    end
end

if select("#", ...) > 0 and (...) == "--child" then
    child(select(2, ...))
    return
end

---------------------------------------------------------------------------- test side

local M = {}
local Proxy = {}
Proxy.__index = Proxy

-- Starts a proxy process: opts.listen (IP, port chosen by the kernel), opts.target
-- ("IP:port"), opts.src (upstream source IP, optional), opts.lifetime (seconds, default 600:
-- the process also exits when the test process goes away).
function M.start(opts)
    local tip, tport = opts.target:match("^(.-):(%d+)$")
    local self = setmetatable({ events = {} }, Proxy)
    local line = require("childproc").spawn(self, "proxy",
        { opts.listen, tip, tport, opts.src or "", tostring(opts.lifetime or 600) }, "proxy")
    local lport = assert(line:match("^ready (%d+)$"), line)
    self.addr = opts.listen .. ":" .. lport
    return self
end

-- One line from the control connection, keeping a partial line across timeouts.
function Proxy:_line(timeout)
    self.ctl:settimeout(timeout)
    local line, err, partial = self.ctl:receive("*l", self.partial)
    self.partial = nil
    if line then return line end
    if err == "timeout" then self.partial = partial end
    return nil, err
end

-- Next reply from the proxy; events read on the way are queued.
function Proxy:_reply(timeout)
    local deadline = socket.gettime() + (timeout or 10)
    while true do
        local left = deadline - socket.gettime()
        if left <= 0 then return nil, "timeout" end
        local line, err = self:_line(left)
        if not line and err ~= "timeout" then return nil, err end
        if line and line:sub(1, 3) == "ev " then
            self.events[#self.events + 1] = line:sub(4)
        elseif line then
            return line
        end
    end
end

function Proxy:cmd(...)
    local ok, err = self.ctl:send(table.concat({ ... }, " ") .. "\n")
    if not ok then return nil, err end
    local line
    line, err = self:_reply()
    if not line then return nil, err end
    if line:sub(1, 2) == "ok" then return line end
    return nil, line
end

function Proxy:stats()
    local line, err = self:cmd("stats")
    if not line then return nil, err end
    local conns, c2s, s2c, state = line:match("^ok (%d+) (%d+) (%d+) (%a+)$")
    return { conns = tonumber(conns), c2s = tonumber(c2s), s2c = tonumber(s2c), open = state == "open" }
end

function Proxy:flip(dir, offset) return self:cmd("flip", dir, offset) end
function Proxy:replay(dir, back) return self:cmd("replay", dir, back) end
function Proxy:swap(dir) return self:cmd("swap", dir) end
function Proxy:drop(dir) return self:cmd("drop", dir) end

function Proxy:truncate(dir, keep, mode)
    return self:cmd("truncate", dir, keep or "-", mode or "close")
end

function Proxy:inject(dir, bytes)
    return self:cmd("inject", dir, (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end)))
end

-- Waits for an event by name; returns its words after the name (strings).
function Proxy:wait(name, timeout)
    local deadline = socket.gettime() + (timeout or 10)
    while true do
        for i, ev in ipairs(self.events) do
            local words = {}
            for w in ev:gmatch("%S+") do words[#words + 1] = w end
            if words[1] == name then
                table.remove(self.events, i)
                return table.unpack(words, 2)
            end
        end
        local left = deadline - socket.gettime()
        if left <= 0 then return nil, "timeout waiting for proxy event " .. name end
        local line, err = self:_line(math.min(left, 0.2))
        if not line and err ~= "timeout" then return nil, "proxy control: " .. tostring(err) end
        if line and line:sub(1, 3) == "ev " then self.events[#self.events + 1] = line:sub(4) end
    end
end

Proxy.stop = require("childproc").stop -- quit, wait, then kill

return M
