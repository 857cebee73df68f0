-- The control surface and secrets (the security issue): the only control surface is the data
-- dir's 0600 Unix socket — the node listens on no TCP or UDP port but its P2P port and the
-- read-only metrics endpoint; the node key is created 0600 and its secret appears in no log
-- line (at debug level), no metric, no control reply and no policy decision record.
local H = require("harness")
local T = require("timenet")

-- Inodes of the sockets a process holds.
local function socket_inodes(pid)
    local set = {}
    local p = io.popen("ls -l /proc/" .. pid .. "/fd 2>/dev/null")
    for line in p:lines() do
        local ino = line:match("socket:%[(%d+)%]")
        if ino then set[ino] = true end
    end
    p:close()
    return set
end

-- Rows of /proc/net/{tcp,tcp6,udp,udp6,unix} that belong to the process: { proto, state,
-- port, path }.
local function sockets_of(pid)
    local mine, rows = socket_inodes(pid), {}
    for _, proto in ipairs({ "tcp", "tcp6", "udp", "udp6" }) do
        local f = io.open("/proc/net/" .. proto)
        if f then
            f:read("l")
            for line in f:lines() do
                local f2 = {}
                for x in line:gmatch("%S+") do f2[#f2 + 1] = x end
                if mine[f2[10]] then
                    rows[#rows + 1] = { proto = proto, state = f2[4],
                        port = tonumber(f2[2]:match(":(%x+)$"), 16) }
                end
            end
            f:close()
        end
    end
    local f = io.open("/proc/net/unix")
    f:read("l")
    for line in f:lines() do
        local f2 = {}
        for x in line:gmatch("%S+") do f2[#f2 + 1] = x end
        if mine[f2[7]] then rows[#rows + 1] = { proto = "unix", state = f2[6], path = f2[8] } end
    end
    f:close()
    return rows
end

local function mode_of(path) return H.sh("stat -c %a " .. path) end

local function http_get(ip, port, path)
    local socket = require("socket")
    local c = assert(socket.connect(ip, port))
    c:settimeout(5)
    c:send("GET " .. path .. " HTTP/1.0\r\n\r\n")
    local body = c:receive("*a")
    c:close()
    return body or ""
end

describe("control surface and secrets", function()
    it("the key is 0600 and its secret is in no log, metric, control reply or record; the " ..
        "node listens only on its P2P port, its metrics port and its 0600 socket", function()
        H.with_net(function(net)
            local a = net:node("a", { log_level = "debug" })
            local b = net:node("b", {})
            a.cfg.metrics_listen = a.ip .. ":" .. H.free_port(a.ip)
            a.cfg.policy_record = a.dir .. "/decisions.jsonl"
            b.cfg.persistent_peers = { a:addr() }
            a:start()
            b:start()
            a:wait_connected({ b })
            -- some misbehaviour and a policy decision to record
            local s = require("socket").connect(a.ip, tonumber(a:addr():match(":(%d+)$")))
            s:send(string.rep("X", 48))
            s:close()
            a:wait_log("Wrong network magic", 5)

            local data = a.cfg.data_dir
            assert.are.equal("600", mode_of(data .. "/node.key"))
            assert.are.equal("600", mode_of(data .. "/control.sock"))
            assert.are.equal("700", mode_of(data))

            -- what an observer could see: every read-only control reply, /metrics, the log,
            -- the decision record
            local seen = {}
            for _, cmd in ipairs({ "help", "status", "peers", "blocked", "strikes", "metrics",
                "policy_status", "bans", "addednodes", "config", "chain", "mempool" }) do
                local r = a:ctl({ cmd = cmd, all = true })
                assert.is_true(r.ok, cmd)
                seen[#seen + 1] = require("dkjson").encode(r)
            end
            seen[#seen + 1] = a:ctl({ cmd = "metrics", format = "prometheus" }).text or ""
            local mip, mport = a.cfg.metrics_listen:match("^(.*):(%d+)$")
            local metrics = http_get(mip, tonumber(mport), "/metrics")
            assert.is_truthy(metrics:find("tn_build_info", 1, true))
            seen[#seen + 1] = metrics
            H.sleep(0.3) -- the decision record is appended as decisions happen
            seen[#seen + 1] = H.read_file(a.cfg.policy_record) or ""
            assert.is_truthy(seen[#seen]:find("on_misbehavior", 1, true))
            seen[#seen + 1] = a:log()
            local all = table.concat(seen, "\n")

            -- the secret: node.key holds the hex of the 64-byte Ed25519 secret (seed | public)
            local key_hex = H.read_file(data .. "/node.key"):match("%x+")
            assert.are.equal(128, #key_hex)
            local seed_hex = key_hex:sub(1, 64)
            local seed = T.unhex(seed_hex)
            for _, needle in ipairs({ seed_hex, seed_hex:upper(), seed_hex:sub(1, 16),
                seed_hex:sub(49, 64), seed }) do
                assert.is_nil(all:find(needle, 1, true), "the key's secret half is visible")
            end
            -- the public half is the node id, which is public
            assert.is_truthy(all:find(key_hex:sub(65), 1, true))

            -- listening sockets: the P2P port and the metrics port (TCP), the control socket
            -- (Unix, in the data dir); nothing on UDP
            local p2p = tonumber(a:addr():match(":(%d+)$"))
            local listening, unix_paths = {}, {}
            for _, row in ipairs(sockets_of(a.pid)) do
                assert.is_falsy(row.proto:find("udp"), "a UDP socket")
                if row.proto:find("tcp") and row.state == "0A" then listening[#listening + 1] = row.port end
                if row.proto == "unix" and row.path then unix_paths[#unix_paths + 1] = row.path end
            end
            table.sort(listening)
            local want = { p2p, tonumber(mport) }
            table.sort(want)
            assert.are.same(want, listening)
            for _, path in ipairs(unix_paths) do
                assert.are.equal(data .. "/control.sock", path)
            end
            -- the metrics endpoint serves metrics and nothing else
            assert.is_truthy(http_get(mip, tonumber(mport), "/config"):find("^HTTP/1%.[01] 404"))
        end)
    end)
end)
