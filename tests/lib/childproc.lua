-- Helper processes the test kit starts (tests/lib/proxy.lua, tests/lib/delayproxy.lua): a
-- lua5.4 child spawned with luv, driven over a control connection. An object using this
-- has `ctl` (the LuaSocket control connection, nil once closed) and `handle` (the luv process
-- handle, set to nil by its exit callback).
local socket = require("socket")

local M = {}

-- Starts `lua5.4 <module's file> --child <control port> args...` for self (the module must
-- be on LUA_PATH), accepts its control connection and returns the first line it sends
-- (its "ready" line). `what` names the helper in errors.
function M.spawn(self, module, args, what)
    local uv = require("luv")
    local srv = assert(socket.bind("127.0.0.1", 0))
    srv:settimeout(10)
    local _, cport = srv:getsockname()
    local script = assert(package.searchpath(module, package.path), module .. ".lua not on LUA_PATH")
    local env = {}
    for _, k in ipairs({ "PATH", "LUA_PATH", "LUA_CPATH", "HOME" }) do
        local v = os.getenv(k)
        if v then env[#env + 1] = k .. "=" .. v end
    end
    local argv = { script, "--child", tostring(cport) }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    local handle, pid = uv.spawn("lua5.4", { args = argv, stdio = { nil, nil, 2 }, env = env },
        function(code)
            self.exit_code = code
            if self.handle then self.handle:close() end
            self.handle = nil
        end)
    assert(handle, "cannot spawn lua5.4: " .. tostring(pid))
    self.handle, self.pid = handle, pid
    local ctl, err = srv:accept()
    srv:close()
    if not ctl then
        handle:kill("sigkill")
        error(what .. " did not start: " .. tostring(err))
    end
    ctl:settimeout(10)
    self.ctl = ctl
    return assert(ctl:receive("*l"))
end

-- Asks the child to quit, waits up to 3 s for it to exit, then kills it (2 s more at most).
function M.stop(self)
    local uv = require("luv")
    if self.ctl then
        self.ctl:settimeout(1)
        self.ctl:send("quit\n")
        self.ctl:close()
        self.ctl = nil
    end
    local deadline = socket.gettime() + 3
    while self.handle and socket.gettime() < deadline do
        uv.run("nowait")
        socket.sleep(0.01)
    end
    if self.handle then
        self.handle:kill("sigkill")
        while self.handle and socket.gettime() < deadline + 2 do
            uv.run("nowait")
            socket.sleep(0.01)
        end
    end
end

return M
