-- A scriptable adversarial peer: speaks the wire protocol through the node's own codec (the
-- `timenet` C module, build/timenet.so) over a blocking LuaSocket connection, and can send
-- anything a correct node never would. Every receive has a deadline; nothing here raises on
-- a network error: calls return nil, err ("closed", "timeout", "crypto", "toobig", ...).
--
--   local A = require("advpeer")
--   local p = assert(A.connect(ip, port, {
--       src = "127.1.2.9",        -- source IP to bind (default: any)
--       magic = "XXXX",           -- prologue fields (default: ours, testnet "TIME")
--       version = 1, min_version = 1, nonce = 42,
--       key = secret_key,         -- 64-byte Ed25519 secret (default: a fresh key)
--       key_file = "dir/node.key",-- or a node's key file
--       timeout = 5,              -- default deadline of every receive, seconds
--       split = 1,                -- send in pieces of this many bytes ...
--       split_delay = 0.002,      -- ... this far apart (header split across writes)
--       rcvbuf = 4096,            -- SO_RCVBUF before connecting (a peer that reads little)
--       max_frame = 8388608,      -- largest frame recv_frame accepts
--   }))
--   p:send_raw(bytes)             -- any bytes (honours split)
--   p:recv_raw(n [, timeout])     -- exactly n bytes
--   p:send_flight()               -- our 48-byte first flight (prologue | ephemeral key)
--   p:read_flight()               -- their flight: true, or nil, "magic"|"version"|"closed"...
--   p:handshake()                 -- the whole handshake as initiator -> their node id (hex)
--   p:auth_frame()                -- our sealed auth frame (frame 0), to send by hand
--   p.hs                          -- the handshake object (timenet.handshake)
--   p:hello{ name=, height=, listen_port=, flags=, version= }   -- our hello message
--   p:send_frame(plaintext)       -- one frame sealed with the session key (counter advances)
--   p:send_msgs({ {type, payload}, ... })  -- many messages in one frame
--   p:send_header(len)            -- a bare 4-byte frame header (0, max+1, 0xFFFFFFFF, ...)
--   p.tx:counter(n), p.rx:counter(n)       -- read/set the frame counters (replay, reorder)
--   p:recv_frame([timeout])       -- one frame's plaintext
--   p:recv_msgs([timeout])        -- one frame's messages: { {type=, payload=}, ... }
--   p:pump(seconds)               -- reads for `seconds`, answering pings; returns messages
--   p:wait_msg(type, [timeout])   -- pumps until a message of `type` arrives; returns it
--   p:ping([timeout])             -- sends a ping, waits for its pong -> rtt seconds
--   p:flood(n, { type=, payload=, per_frame=, rate= })  -- n messages -> n sent
--   p:closed([timeout])           -- true once the node closed the connection; the bytes it
--                                 -- sent first are discarded and counted in p.drained
--   p:close()
--   p.id, p.their_id              -- node ids in hex (ours, theirs after handshake)
--   A.peers_payload(list)        -- a peers message payload: list of { ip=, port=, seen=, id= }
--                                 -- (ip IPv4 text, seen unix seconds, id 64 hex or nil)
--   A.decode_peers(payload)       -- the entries of a peers payload, same shape
-- Constants and the codec itself: A.T (= require("timenet")), A.u32(n) packs a header.
local socket = require("socket")
local T = require("timenet")

local A = { T = T }

local Peer = {}
Peer.__index = Peer

function A.u32(n) return string.pack(">I4", n) end

-- Peer exchange (doc/protocol.md 6.5): entries of 54 bytes, IPv4 as ::ffff:a.b.c.d.
function A.peers_payload(list)
    local parts = { string.pack(">I2", #list) }
    for i, e in ipairs(list) do
        local a, b, c, d = e.ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
        assert(a, "IPv4 only: " .. tostring(e.ip))
        local id = e.id and (e.id:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
            or string.rep("\0", 32)
        parts[i + 1] = string.rep("\0", 10) .. "\255\255" .. string.char(a, b, c, d)
            .. string.pack(">I2>I4", e.port, e.seen or os.time()) .. id
    end
    return table.concat(parts)
end

function A.decode_peers(p)
    local n = string.unpack(">I2", p)
    local out = {}
    for i = 0, n - 1 do
        local off = 3 + i * 54
        local ip = p:sub(off, off + 15)
        local port, seen = string.unpack(">I2>I4", p, off + 16)
        local id = p:sub(off + 22, off + 53):gsub(".",
            function(ch) return string.format("%02x", ch:byte()) end)
        local text
        if ip:sub(1, 12) == string.rep("\0", 10) .. "\255\255" then
            text = string.format("%d.%d.%d.%d", ip:byte(13, 16))
        else
            text = ip:gsub(".", function(ch) return string.format("%02x", ch:byte()) end)
        end
        out[#out + 1] = { ip = text, port = port, seen = seen, id = id ~= string.rep("0", 64) and id or nil }
    end
    return out
end

-- Opens a TCP connection (nothing sent yet) and prepares the handshake state.
function A.connect(ip, port, opts)
    opts = opts or {}
    local s = socket.tcp()
    if opts.src then
        local ok, err = s:bind(opts.src, 0)
        if not ok then
            s:close()
            return nil, "bind " .. opts.src .. ": " .. tostring(err)
        end
    end
    if opts.rcvbuf then s:setoption("recv-buffer-size", opts.rcvbuf) end
    s:settimeout(opts.timeout or 5)
    local ok, err = s:connect(ip, tonumber(port))
    if not ok then
        s:close()
        return nil, err
    end
    s:setoption("tcp-nodelay", true)
    local sk, pk
    if opts.key_file then
        sk, pk = T.read_key(opts.key_file)
        if not sk then return nil, pk end
    elseif opts.key then
        sk, pk = opts.key, opts.key:sub(33, 64) -- libsodium secret keys end with the public key
    else
        pk, sk = T.keypair()
    end
    local self = setmetatable({
        sock = s,
        timeout = opts.timeout or 5,
        split = opts.split,
        split_delay = opts.split_delay or 0.002,
        max_frame = opts.max_frame or 8388608,
        sk = sk,
        pk = pk,
        id = T.hex(pk),
        rbuf = "",
        inbox = {},
    }, Peer)
    self.hs = T.handshake(true, {
        magic = opts.magic, version = opts.version, min_version = opts.min_version, nonce = opts.nonce,
    })
    return self
end

---------------------------------------------------------------------------- raw bytes

function Peer:send_raw(bytes)
    local step = self.split or #bytes
    if step < 1 then step = 1 end
    local i = 1
    while i <= #bytes do
        local piece = bytes:sub(i, i + step - 1)
        self.sock:settimeout(self.timeout)
        local last, err, partial = self.sock:send(piece)
        if not last then
            return nil, err, i - 1 + (partial or 0)
        end
        i = i + #piece
        if self.split and i <= #bytes then socket.sleep(self.split_delay) end
    end
    return true
end

-- Makes rbuf hold at least n bytes, or returns nil, err by the deadline.
function Peer:_fill(n, deadline)
    while #self.rbuf < n do
        local left = deadline - socket.gettime()
        if left <= 0 then return nil, "timeout" end
        self.sock:settimeout(left, "t")
        local data, err, partial = self.sock:receive(n - #self.rbuf)
        local got = data or partial
        if got and #got > 0 then self.rbuf = self.rbuf .. got end
        if not data and #self.rbuf < n then
            if err ~= "timeout" then return nil, err == "closed" and "closed" or err end
        end
    end
    return true
end

function Peer:_take(n)
    local s = self.rbuf:sub(1, n)
    self.rbuf = self.rbuf:sub(n + 1)
    return s
end

-- Exactly n bytes, or nil, err.
function Peer:recv_raw(n, timeout)
    local ok, err = self:_fill(n, socket.gettime() + (timeout or self.timeout))
    if not ok then return nil, err end
    return self:_take(n)
end

---------------------------------------------------------------------------- handshake

function Peer:send_flight() return self:send_raw(self.hs:flight()) end

function Peer:read_flight(timeout)
    local f, err = self:recv_raw(T.FLIGHT_LEN, timeout)
    if not f then return nil, err end
    local ok, why = self.hs:read_flight(f)
    if not ok then return nil, why end
    self.tx, self.rx = self.hs:keys()
    return true
end

-- The auth frame (the first frame of each direction) carrying our identity.
function Peer:auth_frame()
    return self.tx:seal(T.msg(T.MSG_AUTH, self.hs:auth(self.sk)))
end

-- The whole handshake as initiator; returns their node id in hex, or nil, err.
function Peer:handshake(timeout)
    local ok, err = self:send_flight()
    if not ok then return nil, err end
    ok, err = self:read_flight(timeout)
    if not ok then return nil, err end
    local msgs
    msgs, err = self:recv_msgs(timeout)
    if not msgs then return nil, err end
    if #msgs ~= 1 or msgs[1].type ~= T.MSG_AUTH then return nil, "first frame is not auth" end
    local id
    id, err = self.hs:verify(msgs[1].payload)
    if not id then return nil, err end
    self.their_id = T.hex(id)
    ok, err = self:send_raw(self:auth_frame())
    if not ok then return nil, err end
    return self.their_id
end

---------------------------------------------------------------------------- frames and messages

function Peer:send_frame(plaintext) return self:send_raw(self.tx:seal(plaintext)) end

function Peer:send_msgs(list)
    local parts = {}
    for i, m in ipairs(list) do parts[i] = T.msg(m[1] or m.type, m[2] or m.payload or "") end
    return self:send_frame(table.concat(parts))
end

function Peer:send_header(len) return self:send_raw(A.u32(len)) end

function Peer:hello(h)
    h = h or {}
    if not h.name then h.name = "advpeer" end
    return self:send_frame(T.hello(h))
end

-- One frame's plaintext, or nil, "closed"|"timeout"|"toobig"|"invalid"|"crypto".
function Peer:recv_frame(timeout)
    local deadline = socket.gettime() + (timeout or self.timeout)
    local ok, err = self:_fill(T.FRAME_HDR_LEN, deadline)
    if not ok then return nil, err end
    local clen
    clen, err = T.frame_len(self.rbuf:sub(1, 4), self.max_frame)
    if not clen then return nil, err end
    ok, err = self:_fill(4 + clen, deadline)
    if not ok then return nil, err end
    local frame = self:_take(4 + clen)
    return self.rx:open(frame)
end

function Peer:recv_msgs(timeout)
    local pt, err = self:recv_frame(timeout)
    if not pt then return nil, err end
    return T.decode_msgs(pt)
end

-- Answers a ping in msgs; returns the others.
function Peer:_answer(msgs)
    local rest = {}
    for _, m in ipairs(msgs) do
        if m.type == T.MSG_PING and #m.payload == 8 then
            self:send_frame(T.msg(T.MSG_PONG, m.payload))
        else
            rest[#rest + 1] = m
        end
    end
    return rest
end

-- Reads for `seconds`, answering pings; returns the other messages (also kept in inbox),
-- plus the error that ended reading early ("closed", "crypto", ...), if any.
function Peer:pump(seconds)
    local deadline = socket.gettime() + seconds
    local got = {}
    while true do
        local left = deadline - socket.gettime()
        if left <= 0 then return got end
        local msgs, err = self:recv_msgs(left)
        if not msgs then
            if err == "timeout" then return got end
            return got, err
        end
        for _, m in ipairs(self:_answer(msgs)) do
            got[#got + 1] = m
            self.inbox[#self.inbox + 1] = m
        end
    end
end

-- Pumps until a message of `type` (optionally with a matching payload) arrives.
function Peer:wait_msg(type, timeout, payload)
    for i, m in ipairs(self.inbox) do
        if m.type == type and (payload == nil or m.payload == payload) then
            table.remove(self.inbox, i)
            return m
        end
    end
    local deadline = socket.gettime() + (timeout or self.timeout)
    while socket.gettime() < deadline do
        local msgs, err = self:recv_msgs(deadline - socket.gettime())
        if not msgs then return nil, err end
        for _, m in ipairs(self:_answer(msgs)) do
            if m.type == type and (payload == nil or m.payload == payload) then return m end
            self.inbox[#self.inbox + 1] = m
        end
    end
    return nil, "timeout"
end

-- A round trip: ping with a random nonce, wait for the matching pong.
function Peer:ping(timeout)
    local nonce = math.random(1, math.maxinteger)
    local t0 = socket.gettime()
    local ok, err = self:send_frame(T.u64(T.MSG_PING, nonce))
    if not ok then return nil, err end
    local m
    m, err = self:wait_msg(T.MSG_PONG, timeout, string.pack(">i8", nonce))
    if not m then return nil, err end
    return socket.gettime() - t0
end

-- Sends n messages (default: type 0x8001, 16-byte payload), per_frame to a frame (default
-- 100), at most `rate` messages per second when given. Returns the number sent, or
-- nil, err, sent.
function Peer:flood(n, opts)
    opts = opts or {}
    local msg = T.msg(opts.type or (T.MSG_EXPERIMENT_FIRST + 1), opts.payload or string.rep("x", 16))
    local per = opts.per_frame or 100
    local t0, sent = socket.gettime(), 0
    while sent < n do
        local k = math.min(per, n - sent)
        local ok, err = self:send_frame(msg:rep(k))
        if not ok then return nil, err, sent end
        sent = sent + k
        if opts.rate then
            local ahead = t0 + sent / opts.rate - socket.gettime()
            if ahead > 0 then socket.sleep(ahead) end
        end
    end
    return sent
end

-- True once the node has closed the connection (FIN or reset), reading and discarding
-- whatever it sent first; false if it is still open after `timeout` seconds.
function Peer:closed(timeout)
    local deadline = socket.gettime() + (timeout or self.timeout)
    self.drained = #self.rbuf -- bytes that arrived and were never read, for assertions
    self.rbuf = ""
    while true do
        local left = deadline - socket.gettime()
        if left <= 0 then return false end
        self.sock:settimeout(left, "t")
        local data, err, partial = self.sock:receive(65536)
        self.drained = self.drained + #(data or partial or "")
        if not data and err ~= "timeout" then
            self.close_error = err
            return true
        end
        if not data and err == "timeout" then return false end
    end
end

function Peer:close()
    if self.sock then self.sock:close() end
    self.sock = nil
end

return A
