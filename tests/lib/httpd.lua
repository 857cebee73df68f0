-- A tiny HTTP/1.0 server on luv for specs that need a web service on loopback (the peer
-- API of discovery). It runs inside the spec process and serves while the spec waits with
-- harness.wait/sleep (they run the luv loop). Each path maps to a route:
--   { body = "...", status = 200 }   the answer
--   { hang = true }                  accepts and reads the request, never answers
--   { drip = "x", every = 0.1 }      answers 200 and sends `drip` every `every` s, forever
-- Requests are counted per path. Errors inside callbacks are caught (an error in a luv
-- callback would kill busted) and kept in server.errors.
--
--   local httpd = require("httpd")
--   local srv = httpd.start("127.0.0.1", { ["/peers"] = { body = "[]" } })
--   srv.url("/peers")  --> "http://127.0.0.1:PORT/peers"
--   srv:route("/peers", { status = 500, body = "no" }); srv.requests["/peers"]; srv:close()
local uv = require("luv")

local M = {}

local Server = {}
Server.__index = Server

local REASONS = { [200] = "OK", [404] = "Not Found", [500] = "Internal Server Error" }

function Server:route(path, r) self.routes[path] = r end

function Server:_answer(c, path)
    self.requests[path] = (self.requests[path] or 0) + 1
    local r = self.routes[path] or { status = 404, body = "not found" }
    if r.hang then
        self.hung[#self.hung + 1] = c
        return
    end
    if r.drip then
        c:write("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n")
        local t = uv.new_timer()
        self.timers[#self.timers + 1] = t
        t:start(0, math.floor((r.every or 0.1) * 1000), function()
            if c:is_closing() then
                t:stop()
                return
            end
            c:write(r.drip)
        end)
        self.hung[#self.hung + 1] = c
        return
    end
    local status = r.status or 200
    local body = r.body or ""
    c:write(string.format("HTTP/1.0 %d %s\r\nContent-Type: application/json\r\n"
        .. "Content-Length: %d\r\nConnection: close\r\n\r\n", status, REASONS[status] or "X", #body))
    c:write(body, function()
        if not c:is_closing() then c:shutdown(function() if not c:is_closing() then c:close() end end) end
    end)
end

function Server:_accept()
    local c = uv.new_tcp()
    self.tcp:accept(c)
    local buf = ""
    c:read_start(function(err, data)
        local ok, e = pcall(function()
            if err or not data then
                if not c:is_closing() then c:close() end
                return
            end
            buf = buf .. data
            if #buf > 65536 then
                c:close()
                return
            end
            if buf:find("\r\n\r\n", 1, true) then
                c:read_stop()
                local path = buf:match("^GET (%S+) HTTP/1%.[01]\r\n") or "?"
                self:_answer(c, path)
            end
        end)
        if not ok then self.errors[#self.errors + 1] = e end
    end)
end

function M.start(ip, routes)
    local self = setmetatable({ routes = routes or {}, requests = {}, hung = {}, timers = {},
        errors = {} }, Server)
    self.tcp = uv.new_tcp()
    assert(self.tcp:bind(ip, 0))
    self.port = self.tcp:getsockname().port
    self.ip = ip
    assert(self.tcp:listen(64, function(err)
        if err then return end
        local ok, e = pcall(self._accept, self)
        if not ok then self.errors[#self.errors + 1] = e end
    end))
    self.url = function(path) return string.format("http://%s:%d%s", ip, self.port, path) end
    return self
end

function Server:close()
    for _, t in ipairs(self.timers) do if not t:is_closing() then t:close() end end
    for _, c in ipairs(self.hung) do if not c:is_closing() then c:close() end end
    if not self.tcp:is_closing() then self.tcp:close() end
    uv.run("nowait")
end

return M
