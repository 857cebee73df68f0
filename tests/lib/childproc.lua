-- Helper processes the test kit starts (tests/lib/proxy.lua, tests/lib/delayproxy.lua): a
-- lua5.4 child spawned with luv, driven over a control connection. An object using this
-- has `ctl` (the LuaSocket control connection, nil once closed) and `handle` (the luv process
-- handle, set to nil by its exit callback).
local socket = require("socket")

local M = {}

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
