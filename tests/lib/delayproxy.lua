-- A latency injector for local test networks: one lua5.4 process (luv) that forwards many
-- loopback TCP links, each byte delivered `delay` ms after it arrived, in both directions.
-- Unlike tests/lib/proxy.lua (which tampers with frames) it never looks inside the stream,
-- so the encrypted session stays intact; the round trip through a link grows by 2 x delay.
-- It cannot drop packets: loss needs the kernel (tests/lib/netns.lua, nftables).
--
--   local DP = require("delayproxy")
--   local px = DP.start()                        -- one process for every delayed link
--   local addr = px:link("n1-n2", { listen = "127.1.2.2", target = "127.1.2.3:4000",
--                                   src = "127.1.2.2", delay_ms = 40 })
--   -- dial addr instead of the target; the target sees connections from `src`
--   px:delay("n1-n2", 80)                        -- change it while it runs (new bytes)
--   px:stats("n1-n2")                            -- { conns=, bytes= }
--   px:stop()
-- The child exits when its control connection closes, so it never outlives the test.

---------------------------------------------------------------------------- child process

local function child(ctl_port)
    local uv = require("luv")
    local links = {}
    local ctl = uv.new_tcp()
    local ctl_buf = ""

    local function reply(s) ctl:write(s .. "\n") end

    local function now_ms() return uv.hrtime() / 1e6 end

    -- One direction: a FIFO of {due, data|false(=close)} written by one timer.
    local close_pair
    local function new_dir(link, to, c)
        local d = { q = {}, head = 1, tail = 0, to = to, timer = uv.new_timer(), link = link }
        local function pump()
            local t = now_ms()
            while d.head <= d.tail and d.q[d.head].due <= t + 0.5 do
                local item = d.q[d.head]
                d.q[d.head] = nil
                d.head = d.head + 1
                if item.data then
                    if not d.to:is_closing() then d.to:write(item.data) end
                else
                    if not d.to:is_closing() then d.to:shutdown(function() end) end
                    c.half = (c.half or 0) + 1
                    if c.half == 2 then return close_pair(c) end
                end
            end
            local nxt = d.head <= d.tail and d.q[d.head]
            if nxt then d.timer:start(math.max(0, math.ceil(nxt.due - t)), 0, pump) end
        end
        function d.push(data)
            d.tail = d.tail + 1
            d.q[d.tail] = { due = now_ms() + link.delay_ms, data = data }
            if d.tail == d.head then d.timer:start(math.max(0, math.ceil(link.delay_ms)), 0, pump) end
        end
        return d
    end

    function close_pair(c)
        if c.closed then return end
        c.closed = true
        for _, h in ipairs({ c.cli, c.srv, c.up.timer, c.down.timer }) do
            if not h:is_closing() then h:close() end
        end
    end

    local function on_accept(link)
        local cli = uv.new_tcp()
        link.server:accept(cli)
        local srv = uv.new_tcp()
        if link.src ~= "" then srv:bind(link.src, 0) end
        link.conns = link.conns + 1
        local c = { cli = cli, srv = srv }
        c.up = new_dir(link, srv, c)
        c.down = new_dir(link, cli, c)
        cli:nodelay(true)
        srv:connect(link.tip, link.tport, function(err)
            if err then return close_pair(c) end
            srv:nodelay(true)
            srv:read_start(function(rerr, data)
                if rerr or not data then
                    c.down.push(false)
                    if rerr then close_pair(c) end
                    return
                end
                link.bytes = link.bytes + #data
                c.down.push(data)
            end)
        end)
        cli:read_start(function(rerr, data)
            if rerr or not data then
                c.up.push(false)
                if rerr then close_pair(c) end
                return
            end
            link.bytes = link.bytes + #data
            c.up.push(data)
        end)
    end

    local function command(line)
        local w = {}
        for x in line:gmatch("%S+") do w[#w + 1] = x end
        if w[1] == "link" then
            local id, listen, tip, tport, src, delay = w[2], w[3], w[4], tonumber(w[5]), w[6], tonumber(w[7])
            local server = uv.new_tcp()
            local ok, err = server:bind(listen, 0)
            if not ok then return "err bind " .. tostring(err) end
            local link = { id = id, server = server, tip = tip, tport = tport,
                src = src == "-" and "" or src, delay_ms = delay, conns = 0, bytes = 0 }
            server:listen(128, function(lerr) if not lerr then on_accept(link) end end)
            links[id] = link
            return "ok " .. server:getsockname().port
        elseif w[1] == "delay" then
            local link = links[w[2]]
            if not link then return "err no link " .. tostring(w[2]) end
            link.delay_ms = tonumber(w[3])
            return "ok"
        elseif w[1] == "stats" then
            local link = links[w[2]]
            if not link then return "err no link " .. tostring(w[2]) end
            return string.format("ok %d %d", link.conns, link.bytes)
        elseif w[1] == "quit" then
            return "quit"
        end
        return "err unknown command"
    end

    ctl:connect("127.0.0.1", tonumber(ctl_port), function(err)
        if err then os.exit(1) end
        reply("ready")
        ctl:read_start(function(rerr, data)
            if rerr or not data then
                uv.stop()
                return
            end
            ctl_buf = ctl_buf .. data
            while true do
                local line, rest = ctl_buf:match("^([^\n]*)\n(.*)$")
                if not line then break end
                ctl_buf = rest
                local r = command(line)
                if r == "quit" then
                    uv.stop()
                    return
                end
                reply(r)
            end
        end)
    end)
    uv.run()
    os.exit(0)
end

if select("#", ...) > 0 and (...) == "--child" then
    child(select(2, ...))
    return
end

---------------------------------------------------------------------------- parent side

local M = {}
local P = {}
P.__index = P

function M.start()
    local self = setmetatable({}, P)
    local line = require("childproc").spawn(self, "delayproxy", {}, "delay proxy")
    assert(line == "ready", "delay proxy: no ready line")
    return self
end

function P:cmd(...)
    assert(self.ctl:send(table.concat({ ... }, " ") .. "\n"))
    local line, err = self.ctl:receive("*l")
    if not line then error("delay proxy: " .. tostring(err)) end
    if line:sub(1, 2) ~= "ok" then error("delay proxy: " .. line) end
    return line
end

-- Adds a link; returns the address to dial ("IP:port").
function P:link(id, o)
    local tip, tport = o.target:match("^(.-):(%d+)$")
    local line = self:cmd("link", id, o.listen, tip, tport, o.src or "-", tostring(o.delay_ms or 0))
    return o.listen .. ":" .. line:match("^ok (%d+)")
end

function P:delay(id, ms) self:cmd("delay", id, tostring(ms)) end

function P:stats(id)
    local c, b = self:cmd("stats", id):match("^ok (%d+) (%d+)")
    return { conns = tonumber(c), bytes = tonumber(b) }
end

P.stop = require("childproc").stop -- quit, wait, then kill

return M
