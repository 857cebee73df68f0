-- Changing a running node: config reload (control socket and SIGHUP) applies the live keys at
-- once and names the ones that need a restart; a broken file changes nothing; SIGHUP also
-- reloads the policy, once; the log file is reopened on SIGUSR1 for logrotate.
local H = require("harness")

local function has(text, plain) return text:find(plain, 1, true) ~= nil end

local function count_in(text, plain)
    local n = 0
    for line in text:gmatch("[^\n]+") do
        if has(line, plain) then n = n + 1 end
    end
    return n
end

describe("config reload", function()
    it("applies a raised max_peers at once: a refused peer gets in", function()
        H.with_net(function(net)
            local a = net:node("a", { max_peers = 1, min_peers = 0 })
            a:start()
            local b = net:node("b", { persistent_peers = { a:addr() } })
            b:start()
            a:wait_connected({ b })
            -- c redials every 0.2 s and is refused: a is full
            local c = net:node("c", { persistent_peers = { a:addr() }, reconnect_backoff = { 1 } })
            c:start()
            H.wait(function() return a:metric('tn_inbound_refused_total{reason="slots"}') >= 2 end, 10,
                "a to refuse c for lack of slots")
            assert.are.equal(1, #a:peers())

            a.cfg.max_peers = 5
            a.cfg.log_level = "debug"
            a:write_config()
            local r = a:ctl("config_reload")
            assert.is_true(r.ok, r.error)
            assert.are.same({ "log_level", "max_peers" }, (function()
                table.sort(r.applied)
                return r.applied
            end)())
            assert.are.same({}, r.restart_required)
            assert.is_true(r.policy_reload)
            a:wait_connected({ b, c }, 10)
            a:wait_log("Config reloaded (control socket): applied log_level, max_peers")
            -- the new level is in force: a connection closed before its handshake is a debug line
            local probe = assert(require("socket").tcp())
            assert(probe:connect(a.ip, tonumber(a:addr():match(":(%d+)$"))))
            probe:close()
            a:wait_log(" DEBUG ")
            -- the policies see the new values too (tn.config is refreshed by the reload)
            a:wait_log("Policy generation 2 loaded from policies (config reload)")
            assert.is_truthy(a:ctl("config").config:find("\nmax_peers = 5\n", 1, true))
        end)
    end)

    it("rejects a broken file with file:line and leaves the node as it was", function()
        H.with_net(function(net)
            local a = net:node("a", { max_peers = 9 })
            a:start()
            local before = a:ctl("config").config
            local good = H.read_file(a:config_path())
            H.write_file(a:config_path(), good .. "max_peers = 20\nmax_peer = 3\n")
            local r = a:ctl("config_reload")
            assert.is_false(r.ok)
            local lines = select(2, good:gsub("\n", "")) + 2
            assert.are.equal(a:config_path() .. ":" .. lines
                .. ": unknown key 'max_peer' (did you mean 'max_peers'?)", r.error)
            assert.are.equal(before, a:ctl("config").config, "nothing changed")
            a:wait_log("Config reload (control socket) rejected, nothing changed: " .. a:config_path())
            assert.are.equal(1, a:metric('tn_config_reloads_total{result="rejected"}'))
            -- a log file that cannot be opened is refused before anything changes
            H.write_file(a:config_path(), good .. "max_peers = 20\nlog_file = \"/proc/nope/x.log\"\n")
            r = a:ctl("config_reload")
            assert.is_false(r.ok)
            assert.is_truthy(has(r.error, "cannot open log file /proc/nope/x.log"), r.error)
            assert.are.equal(before, a:ctl("config").config)
            -- a value out of range, a syntax error
            H.write_file(a:config_path(), good .. "heartbeat_interval = -1\n")
            r = a:ctl("config_reload")
            assert.is_truthy(r.error:find(":%d+: 'heartbeat_interval' = %-1 is out of range"), r.error)
            H.write_file(a:config_path(), good .. "max_peers = = 3\n")
            r = a:ctl("config_reload")
            assert.is_false(r.ok)
            assert.is_truthy(r.error:find("timenet%.conf:%d+:"), r.error)
            assert.is_true(a:ctl("status").ok)
            -- fixed: applies
            H.write_file(a:config_path(), good .. "max_peers = 20\n")
            r = a:ctl("config_reload")
            assert.is_true(r.ok, r.error)
            assert.are.same({ "max_peers" }, r.applied)
        end)
    end)

    it("names the keys that need a restart and keeps their old values in force", function()
        H.with_net(function(net)
            local a = net:node("a")
            a:start()
            local old_listen = a.cfg.listen
            a.cfg.node_name = "renamed"
            a.cfg.listen = string.format("%s:%d", a.ip, H.free_port(a.ip))
            a.cfg.pong_deadline = 0.25
            a:write_config()
            local r = a:ctl("config_reload")
            assert.is_true(r.ok, r.error)
            assert.are.same({ "pong_deadline" }, r.applied)
            table.sort(r.restart_required)
            assert.are.same({ "listen", "node_name" }, r.restart_required)
            a:wait_log("Config reloaded (control socket): applied pong_deadline; changed but needing a "
                .. "restart: node_name, listen (still running with the old values)")
            local st = a:status()
            assert.are.equal("a", st.name)
            assert.are.equal(old_listen, st.listen)
            local cfg = a:ctl("config").config
            assert.is_truthy(has(cfg, "\npong_deadline = 0.25\n"))
            assert.is_truthy(has(cfg, '\nnode_name = "a"\n'))
        end)
    end)

    it("dials peers a reload adds and stops redialing the ones it removes", function()
        H.with_net(function(net)
            local a = net:node("a")
            local b = net:node("b")
            local s = net:node("s")
            a:start()
            b:start()
            s:start()
            a.cfg.persistent_peers = { b:addr() }
            a.cfg.seeds = { s:addr() }
            a:write_config()
            local r = a:ctl("config_reload")
            assert.is_true(r.ok, r.error)
            a:wait_connected({ b, s })
            a.cfg.persistent_peers = {}
            a:write_config()
            assert.is_true(a:ctl("config_reload").ok)
            assert.is_true(a:ctl({ cmd = "disconnect", addr = b.ip }).ok)
            H.sleep(1.5) -- well past reconnect_delay: no redial
            assert.is_nil(a:peer_row(b))
            assert.is_truthy(a:peer_row(s))
        end)
    end)
end)

describe("signals", function()
    it("SIGHUP reloads the config, then the policy, exactly once each", function()
        H.with_net(function(net)
            local a = net:node("a")
            a:start()
            a.cfg.heartbeat_interval = 0.5
            a:write_config()
            a:signal("sighup")
            a:wait_log("Policy generation 2 loaded from policies (SIGHUP)")
            a:wait_log("Config reloaded (SIGHUP): applied heartbeat_interval")
            H.sleep(0.5)
            assert.are.equal(1, a:count("Config reloaded (SIGHUP)"))
            assert.are.equal(1, a:count("loaded from policies (SIGHUP)"))
            assert.are.equal(2, a:status().policy.generation)
            -- nothing changed in the file: the policy still reloads, once
            a:signal("sighup")
            a:wait_log("Policy generation 3 loaded from policies (SIGHUP)")
            a:wait_log("Config reloaded (SIGHUP): no changes")
            H.sleep(0.5)
            assert.are.equal(3, a:status().policy.generation)
            -- a broken config: the policy reload still happens, the config error is logged
            H.write_file(a:config_path(), H.read_file(a:config_path()) .. "oops = 1\n")
            a:signal("sighup")
            a:wait_log("Policy generation 4 loaded from policies (SIGHUP)")
            a:wait_log("Config reload (SIGHUP) rejected, nothing changed: " .. a:config_path() .. ":")
        end)
    end)

    it("writes log_file and reopens it on SIGUSR1 after logrotate moved it", function()
        H.with_net(function(net)
            local log = net.dir .. "/a.log"
            local a = net:node("a", { log_file = log })
            a:start()
            H.wait(function() return has(H.read_file(log) or "", "timenetd started") end, 5,
                "the start line in log_file")
            assert.are.equal("", a:log(), "nothing on stderr")
            os.rename(log, log .. ".1")
            assert.is_true(a:ctl({ cmd = "connect", addr = "127.0.0.1:1" }).ok)
            H.wait(function() return has(H.read_file(log .. ".1"), "Dial to 127.0.0.1:1 failed") end, 5,
                "the old file to be written until SIGUSR1")
            a:signal("sigusr1")
            H.wait(function() return has(H.read_file(log) or "", "Log file reopened (SIGUSR1)") end, 5,
                "a new log file")
            a:ctl({ cmd = "connect", addr = "127.0.0.1:2" })
            H.wait(function() return has(H.read_file(log), "Dial to 127.0.0.1:2 failed") end, 5, "line")
            assert.are.equal(0, count_in(H.read_file(log .. ".1"), "127.0.0.1:2"))
            -- a reload moves the log back to stderr
            a.cfg.log_file = ""
            a:write_config()
            assert.is_true(a:ctl("config_reload").ok)
            a:ctl({ cmd = "connect", addr = "127.0.0.1:3" })
            a:wait_log("Dial to 127.0.0.1:3 failed")
            assert.are.equal(0, count_in(H.read_file(log), "127.0.0.1:3"))
            -- a log file the node cannot open at start stops it with a clear message
            local b = net:node("b", { log_file = net.dir .. "/no/such/dir/b.log" })
            b:start({ wait = false })
            H.wait(function() return b.exit_code ~= nil end, 5, "b to exit")
            assert.are.equal(1, b.exit_code)
            local want = "timenetd: cannot open log file " .. net.dir .. "/no/such/dir/b.log"
            assert.is_truthy(has(b:log(), want), b:log())
        end)
    end)
end)
