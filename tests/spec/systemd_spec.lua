-- Installing and running under systemd: `make install` into a staging DESTDIR, the unit file
-- checked by systemd-analyze (where it exists), the installed binaries on the installed
-- config and policies, and the sd_notify messages the node sends to $NOTIFY_SOCKET.
local H = require("harness")
local unix = require("socket.unix")

local function has(text, plain) return text:find(plain, 1, true) ~= nil end

-- Runs a shell command; returns its output (stdout and stderr) and exit code.
local function sh(cmd)
    local p = assert(io.popen("(" .. cmd .. ") 2>&1"))
    local out = p:read("a")
    local _, _, code = p:close()
    return out, code
end

local function mode(path) return H.sh("stat -c %a " .. path) end

-- `make install` as an operator would run it, without rebuilding what `make` built.
local function make(target, destdir, extra)
    return sh(string.format("env -u MAKEFLAGS -u MAKELEVEL make --no-print-directory -o %s/timenetd "
        .. "-o %s/timenetctl BUILD=%s DESTDIR=%s PREFIX=/usr %s %s", H.BUILD, H.BUILD, H.BUILD,
        destdir, extra or "", target))
end

describe("make install", function()
    it("stages binaries, policies, the example config and the unit; the installed files check", function()
        H.with_net(function(net)
            local d = net.dir .. "/root"
            local out, code = make("install", d)
            assert.are.equal(0, code, out)
            assert.are.equal("755", mode(d .. "/usr/bin/timenetd"))
            assert.are.equal("755", mode(d .. "/usr/bin/timenetctl"))
            for _, f in ipairs({ "scoring.lua", "bans.lua", "lib/netgroup.lua", "README.md" }) do
                assert.is_truthy(H.read_file(d .. "/usr/share/timenet/policies/" .. f), f)
                assert.is_truthy(H.read_file(d .. "/etc/timenet/policies/" .. f), f)
            end
            assert.is_truthy(H.read_file(d .. "/usr/share/timenet/examples/mainnet.conf"))
            assert.is_truthy(H.read_file(d .. "/usr/share/timenet/README.md"))
            local conf = d .. "/etc/timenet/timenetd.conf"
            local unit_path = d .. "/usr/lib/systemd/system/timenetd.service"
            local unit = assert(H.read_file(unit_path))
            local exec = "\nExecStart=/usr/bin/timenetd --config /etc/timenet/timenetd.conf\n"
            assert.is_truthy(has(unit, exec), unit)
            assert.is_truthy(has(unit, "\nType=notify\n"))
            assert.is_truthy(has(H.read_file(conf), 'policy_dir = "/etc/timenet/policies"'))

            -- the installed binary accepts the installed config and policies
            out, code = sh(d .. "/usr/bin/timenetd --check-config " .. conf)
            assert.are.equal(0, code, out)
            assert.are.equal(conf .. ": ok\n", out)
            out, code = sh(d .. "/usr/bin/timenetd --check-policy " .. d .. "/etc/timenet/policies")
            assert.are.equal(0, code, out)
            -- the installed CLI finds the timenetd next to it
            out, code = sh(d .. "/usr/bin/timenetctl policy check " .. d .. "/etc/timenet/policies")
            assert.are.equal(0, code, out)
            assert.is_truthy(out:find("ok %(%d+ files"), out)

            -- systemd accepts the unit (ExecStart pointed at the staged binary)
            if os.execute("command -v systemd-analyze >/dev/null 2>&1") then
                local staged = net.dir .. "/timenetd.service"
                H.write_file(staged, (unit:gsub("ExecStart=/usr/bin/timenetd",
                    "ExecStart=" .. d .. "/usr/bin/timenetd")))
                out, code = sh("systemd-analyze verify " .. staged)
                assert.are.equal(0, code, out)
                assert.are.equal("", out)
            else
                io.stderr:write("note: systemd-analyze not installed; the unit file was not verified\n")
            end

            -- a second install keeps the operator's config and policies
            H.write_file(conf, H.read_file(conf) .. "max_peers = 12\n")
            H.write_file(d .. "/etc/timenet/policies/bans.lua", "-- edited\nreturn {}\n")
            out, code = make("install", d)
            assert.are.equal(0, code, out)
            assert.is_truthy(has(out, "kept " .. conf), out)
            assert.is_truthy(has(H.read_file(conf), "max_peers = 12"))
            assert.are.equal("-- edited\nreturn {}\n", H.read_file(d .. "/etc/timenet/policies/bans.lua"))

            -- uninstall removes what install put outside SYSCONFDIR
            out, code = make("uninstall", d)
            assert.are.equal(0, code, out)
            assert.is_nil(H.read_file(d .. "/usr/bin/timenetd"))
            assert.is_nil(H.read_file(unit_path))
            assert.is_nil(H.read_file(d .. "/usr/share/timenet/README.md"))
            assert.is_truthy(H.read_file(conf))
        end)
    end)

    it("puts the paths of another PREFIX into the unit and the config", function()
        H.with_net(function(net)
            local d = net.dir .. "/root"
            local out, code = make("install", d, "PREFIX=/opt/timenet")
            assert.are.equal(0, code, out)
            local unit = assert(H.read_file(d .. "/opt/timenet/lib/systemd/system/timenetd.service"))
            assert.is_truthy(has(unit,
                "ExecStart=/opt/timenet/bin/timenetd --config /opt/timenet/etc/timenet/timenetd.conf"), unit)
            local conf = assert(H.read_file(d .. "/opt/timenet/etc/timenet/timenetd.conf"))
            assert.is_truthy(has(conf, 'policy_dir = "/opt/timenet/etc/timenet/policies"'), conf)
        end)
    end)
end)

-- A Unix datagram socket standing in for systemd's notification socket.
local function notify_socket(path)
    local s = assert(unix.dgram())
    assert(s:bind(path))
    return s
end

-- Receives datagrams until one contains `want` (or the timeout passes); returns all seen.
local function receive_until(s, want, timeout)
    local seen = {}
    local deadline = H.now() + timeout
    while H.now() < deadline do
        s:settimeout(math.max(0.05, deadline - H.now()))
        local msg = s:receive()
        if msg then
            seen[#seen + 1] = msg
            if has(msg, want) then return seen end
        end
    end
    error("no " .. want .. " within " .. timeout .. " s; got: " .. table.concat(seen, " | "), 2)
end

describe("systemd notifications", function()
    it("sends READY=1 once serving, WATCHDOG=1 at half the interval, RELOADING=1 and STOPPING=1", function()
        H.with_net(function(net)
            local path = net.dir .. "/notify.sock"
            local s = notify_socket(path)
            local a = net:node("a")
            a:start({ env = { NOTIFY_SOCKET = path, WATCHDOG_USEC = "200000" } })
            local seen = receive_until(s, "READY=1", 5)
            assert.are.equal(1, #seen, "READY=1 comes first")
            assert.is_truthy(seen[1]:find("^READY=1\nSTATUS=network testnet, listening on "), seen[1])
            a:wait_log("systemd watchdog: a keep-alive every 0.100 s")
            -- keep-alives every 0.1 s
            local t0 = H.now()
            local n = 0
            while n < 5 do
                receive_until(s, "WATCHDOG=1", 2)
                n = n + 1
            end
            assert.is_true(H.now() - t0 < 1.5, "5 keep-alives in " .. (H.now() - t0) .. " s")
            -- SIGHUP: RELOADING=1, then READY=1 once the policy is reloaded
            a:signal("sighup")
            receive_until(s, "RELOADING=1", 5)
            receive_until(s, "READY=1", 5)
            a:wait_log("Policy generation 2 loaded from policies (SIGHUP)")
            -- SIGTERM: STOPPING=1 before the node goes
            a:signal("sigterm")
            receive_until(s, "STOPPING=1", 5)
            H.wait(function() return a.exit_code ~= nil end, 10, "a to exit")
            assert.are.equal(0, a.exit_code)
            s:close()
        end)
    end)

    it("sends nothing without NOTIFY_SOCKET and no keep-alives for another WATCHDOG_PID", function()
        H.with_net(function(net)
            local path = net.dir .. "/notify.sock"
            local s = notify_socket(path)
            local a = net:node("a")
            a:start({ env = { NOTIFY_SOCKET = path, WATCHDOG_USEC = "100000", WATCHDOG_PID = "1" } })
            receive_until(s, "READY=1", 5)
            s:settimeout(0.5)
            assert.is_nil((s:receive()), "no keep-alive for another pid's watchdog")
            assert.are.equal(0, a:count("systemd watchdog"))
            a:stop()
            local b = net:node("b")
            b:start() -- no NOTIFY_SOCKET: runs as before
            assert.is_true(b:ctl("status").ok)
            s:close()
        end)
    end)
end)
