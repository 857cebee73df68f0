-- timenetctl against live nodes: every verb as a table and as JSON, its --help, and the
-- errors an operator sees when the node is not running or the socket is not theirs.
local H = require("harness")
local json = require("dkjson")

local CTL = H.BUILD .. "/timenetctl"

-- Runs timenetctl with args (a string, shell syntax); returns stdout, stderr, exit code.
local function run(args)
    local errf = os.tmpname()
    local p = assert(io.popen(string.format("%s %s 2>%s", CTL, args, errf)))
    local out = p:read("a")
    local _, _, code = p:close()
    local err = H.read_file(errf) or ""
    os.remove(errf)
    return out, err, code
end

-- timenetctl for a node: ctl(node, "status") -> stdout, stderr, code
local function ctl(node, args) return run("--datadir " .. node.cfg.data_dir .. " " .. args) end

-- The same with --json: the decoded reply and the exit code.
local function ctl_json(node, args)
    local out, err, code = ctl(node, "--json " .. args)
    local v = json.decode(out)
    assert(type(v) == "table", "not JSON: " .. out .. err)
    return v, code
end

local function has(text, plain) return text:find(plain, 1, true) ~= nil end

local _ -- placeholder for values a test ignores

describe("timenetctl", function()
    it("shows status, peers and strikes as tables and as JSON", function()
        H.with_net(function(net)
            local b = net:node("b")
            local a = net:node("a", { persistent_peers = { b:addr() } })
            b:start()
            a:start()
            a:wait_connected({ b })
            local out, err, code = ctl(a, "status")
            assert.are.equal(0, code, err)
            assert.is_truthy(out:find("name%s+a\n"), out)
            assert.is_truthy(out:find("node id%s+" .. a:id()), out)
            assert.is_truthy(has(out, "1 connected: 0 in, 1 out"), out)
            assert.is_truthy(out:find("policy%s+generation 1"), out)
            local st = ctl_json(a, "status")
            assert.are.equal(a:id(), st.id)
            assert.are.equal(1, st.peers.outbound)
            assert.is_nil(st.ok)

            out, err, code = ctl(a, "peers")
            assert.are.equal(0, code, err)
            local header = "^ADDR%s+ID%s+DIR%s+ROLE%s+NAME%s+CONNECTED%s+RTT%s+SCORE%s+IN%s+OUT%s+STRIKES\n"
            assert.is_truthy(out:find(header), out)
            local row = b:addr():gsub("%.", "%%.") .. "%s+" .. b:id():sub(1, 8) .. "%s+out%s+peer%s+b%s"
            assert.is_truthy(out:find(row), out)
            local peers = ctl_json(a, "peers").peers
            assert.are.equal(1, #peers)
            assert.are.equal(b:id(), peers[1].id)
            assert.are.equal(0, peers[1].strikes)

            out = ctl(a, "strikes")
            assert.are.equal("no strikes\n", out)
            assert.are.same({}, ctl_json(a, "strikes").strikes)
        end)
    end)

    it("bans, lists, unbans and clears bans; a ban survives a restart", function()
        H.with_net(function(net)
            local b = net:node("b")
            local a = net:node("a", { whitelist = { "127.0.0.250" } })
            a:start()
            b.cfg.persistent_peers = { a:addr() }
            b:start()
            a:wait_connected({ b })
            local out, err, code = ctl(a, "ban " .. b.ip .. " 10m --reason 'spamming blocks'")
            assert.are.equal(0, code, err)
            assert.are.equal("banned " .. b.ip .. " for 10m00s\n", out)
            H.wait(function() return #a:peers() == 0 end, 5, "b's session to close")
            a:wait_log("Banned " .. b.ip .. " for 600 s (operator: spamming blocks)")
            out = ctl(a, "bans")
            assert.is_truthy(out:find("^IP%s+REMAINING%s+COUNT%s+REASON\n"), out)
            local row = b.ip:gsub("%.", "%%.") .. "%s+%d+m%d+s%s+1%s+operator: spamming blocks"
            assert.is_truthy(out:find(row), out)
            local bans = ctl_json(a, "bans").bans
            assert.are.equal(1, #bans)
            assert.are.equal(b.ip, bans[1].ip)
            assert.is_true(bans[1].remaining_s > 590 and bans[1].remaining_s <= 600)

            a:restart()
            bans = ctl_json(a, "bans").bans
            assert.are.equal(1, #bans, "the ban is stored")
            assert.are.equal(b.ip, bans[1].ip)

            out, err, code = ctl(a, "unban " .. b.ip)
            assert.are.equal(0, code, err)
            assert.are.equal("unbanned " .. b.ip .. "\n", out)
            assert.are.equal("no active bans\n", (ctl(a, "bans")))
            a:wait_connected({ b }, 15) -- b's redials get through again

            -- default duration is ban_long; JSON replies; clearbans
            local r, c = ctl_json(a, "ban 127.0.0.251")
            assert.are.equal(0, c)
            assert.is_true(r.remaining_s > 86000)
            ctl(a, "ban 127.0.0.252:1234 1h30m")
            assert.are.equal(2, #ctl_json(a, "bans").bans)
            out = ctl(a, "clearbans")
            assert.are.equal("cleared 2 active bans\n", out)
            assert.are.same({}, ctl_json(a, "bans").bans)

            -- refusals
            _, err, code = ctl(a, "ban 127.0.0.250")
            assert.are.equal(1, code)
            assert.are.equal("timenetctl: address is whitelisted\n", err)
            _, err, code = ctl(a, "ban 127.0.0.9 soon")
            assert.are.equal(2, code)
            assert.is_truthy(has(err, "'soon' is not a duration"), err)
            _, err, code = ctl(a, "unban 127.0.0.9")
            assert.are.equal(1, code)
            assert.are.equal("timenetctl: address is not banned\n", err)
            r, c = ctl_json(a, "unban 127.0.0.9")
            assert.are.equal(1, c)
            assert.are.same({ ok = false, error = "address is not banned" }, r)
        end)
    end)

    it("connects and disconnects by address and by node id prefix", function()
        H.with_net(function(net)
            local a = net:node("a")
            local b = net:node("b")
            a:start()
            b:start()
            local out, err, code = ctl(a, "connect " .. b:addr())
            assert.are.equal(0, code, err)
            assert.are.equal("dialing " .. b:addr() .. "\n", out)
            a:wait_connected({ b })
            _, err, code = ctl(a, "connect " .. b:addr())
            assert.are.equal(1, code)
            assert.are.equal("timenetctl: already connected or dialing\n", err)

            out, err, code = ctl(a, "disconnect " .. b:id():sub(1, 8))
            assert.are.equal(0, code, err)
            assert.are.equal("closed 1 connection\n", out)
            H.wait(function() return #a:peers(true) == 0 end, 5, "the session to close")

            ctl(a, "connect " .. b:addr())
            a:wait_connected({ b })
            local r = ctl_json(a, "disconnect " .. b.ip)
            assert.are.equal(1, r.closed)

            _, err, code = ctl(a, "disconnect 127.0.0.99")
            assert.are.equal(1, code)
            assert.are.equal("timenetctl: no such session\n", err)
            _, err, code = ctl(a, "disconnect deadbeef")
            assert.are.equal(1, code)
            assert.are.equal("timenetctl: no connected peer has an id starting deadbeef\n", err)
            _, err, code = ctl(a, "connect")
            assert.are.equal(2, code)
            assert.is_truthy(has(err, "missing IP:port"), err)
        end)
    end)

    it("addnode keeps a peer connected across restarts of both ends until removed", function()
        H.with_net(function(net)
            local a = net:node("a")
            local b = net:node("b")
            a:start()
            b:start()
            local out, err, code = ctl(a, "addnode " .. b:addr())
            assert.are.equal(0, code, err)
            assert.are.equal("added " .. b:addr() .. ": kept connected, also after restarts\n", out)
            a:wait_connected({ b })
            out = ctl(a, "addednodes")
            assert.is_truthy(out:find("^ADDR%s+CONNECTED\n" .. b:addr():gsub("%.", "%%.") .. "%s+yes\n"), out)
            local _, e2, c2 = ctl(a, "addnode " .. b:addr())
            assert.are.equal(1, c2)
            assert.are.equal("timenetctl: node already added\n", e2)

            -- a forgets nothing over a restart (its config lists no peer)
            a:restart()
            a:wait_log("Dialing 1 peers added with addnode")
            a:wait_connected({ b })
            -- and b's restart is a loss a redials
            b:restart()
            a:wait_connected({ b }, 15)
            local nodes = ctl_json(a, "addednodes").nodes
            assert.are.same({ { addr = b:addr(), connected = true } }, nodes)

            _, err, code = ctl(a, "addnode " .. b:addr() .. " remove")
            assert.are.equal(0, code, err)
            assert.are.equal("no added nodes\n", (ctl(a, "addednodes")))
            a:restart()
            H.sleep(1)
            assert.are.equal(0, #a:peers(true))
            _, err, code = ctl(a, "addnode " .. b:addr() .. " remove")
            assert.are.equal(1, code)
            assert.are.equal("timenetctl: node has not been added\n", err)
            _, _, code = ctl(a, "addnode " .. b:addr() .. " sometimes")
            assert.are.equal(2, code)
            _, err, code = ctl(a, "addnode " .. b:addr() .. " onetry")
            assert.are.equal(0, code, err)
            a:wait_connected({ b })
        end)
    end)

    it("shows the policy status, reloads it and checks a directory offline", function()
        H.with_net(function(net)
            local pol = net.dir .. "/policies"
            os.execute("cp -R policies " .. pol)
            local a = net:node("a", { policy_dir = pol })
            a:start()
            local out, err, code = ctl(a, "policy status")
            assert.are.equal(0, code, err)
            assert.is_truthy(out:find("generation%s+1\n"), out)
            assert.is_truthy(out:find("breaker%s+closed\n"), out)
            assert.is_truthy(out:find("HOOK%s+FILE%s+CALLS%s+ERRORS%s+FALLBACKS\n"), out)
            local row = "\nscore%s+" .. pol:gsub("%p", "%%%0") .. "/scoring%.lua%s+%d+%s+0%s+0\n"
            assert.is_truthy(out:find(row), out)
            local st = ctl_json(a, "policy status").policy
            assert.are.equal(1, st.generation)
            assert.is_true(st.hooks.score.defined)

            out, err, code = ctl(a, "policy reload")
            assert.are.equal(0, code, err)
            assert.are.equal("policy generation 2 loaded\n", out)

            -- a broken copy: rejected with file:line, generation 2 stays
            local f = assert(io.open(pol .. "/bans.lua", "a"))
            f:write("\nthis is not lua\n")
            f:close()
            out, _, code = ctl(a, "policy check " .. pol)
            assert.are.equal(1, code)
            assert.is_truthy(out:find("bans%.lua:%d+:"), out)
            local r, c = ctl_json(a, "policy check " .. pol)
            assert.are.equal(1, c)
            assert.is_false(r.ok)
            _, err, code = ctl(a, "--timeout 20 policy reload")
            assert.are.equal(1, code)
            assert.is_truthy(err:find("bans%.lua:%d+: .*policy generation 2 is still active"), err)
            assert.are.equal(2, ctl_json(a, "policy status").policy.generation)

            out, err, code = ctl(a, "policy check policies")
            assert.are.equal(0, code, err)
            assert.is_truthy(out:find("^policies: ok %(%d+ files, %d+ hooks, %d+ self%-tests passed%)"), out)
            _, _, code = run("policy check")
            assert.are.equal(2, code)
        end)
    end)

    it("shows the config in force, reloads it and prints the metrics", function()
        H.with_net(function(net)
            local a = net:node("a")
            a:start()
            local out, err, code = ctl(a, "config show")
            assert.are.equal(0, code, err)
            assert.is_truthy(out:find('\nnode_name = "a"\n', 1, true), out)
            assert.is_truthy(out:find("\nmax_peers = 50\n", 1, true), out)
            out, err, code = ctl(a, "config reload")
            assert.are.equal(0, code, err)
            assert.are.equal(a:config_path() .. ": no changes\n", out)
            a.cfg.max_peers = 20
            a:write_config()
            out = ctl(a, "config reload")
            assert.are.equal("applied: max_peers\npolicy reloaded so tn.config follows\n", out)
            local r = ctl_json(a, "config reload")
            assert.are.same({}, r.applied)
            assert.are.equal(a:config_path(), r.file)

            out, err, code = ctl(a, "metrics")
            assert.are.equal(0, code, err)
            assert.is_truthy(has(out, "# TYPE tn_connections gauge\n"), out)
            assert.is_truthy(has(out, 'tn_config_reloads_total{result="ok"} 3\n'), out)
            local m = ctl_json(a, "metrics").metrics
            assert.are.equal(3, m['tn_config_reloads_total{result="ok"}'])
        end)
    end)

    it("answers chain, mempool and tx submit when the node has them", function()
        H.with_net(function(net)
            local a = net:node("a")
            a:start()
            if not a:ctl("help").verbs.chain then
                pending("the node has no chain verbs yet")
                return
            end
            local out, err, code = ctl(a, "chain")
            assert.are.equal(0, code, err)
            assert.is_truthy(out:find("^height%s+0\n"), out)
            assert.are.equal(0, ctl_json(a, "chain").height)
            out, err, code = ctl(a, "mempool")
            assert.are.equal(0, code, err)
            assert.is_truthy(out:find("^0 transactions, 0 B"), out)
            assert.are.same({}, ctl_json(a, "mempool --ids").ids)
            local tx = net.dir .. "/tx.bin"
            H.write_file(tx, "not a transaction")
            _, err, code = ctl(a, "tx submit " .. tx)
            assert.are.equal(1, code)
            assert.is_truthy(err:find("^timenetctl: "), err)
        end)
    end)

    it("has --help for every verb and refuses unknown verbs and options", function()
        local out, _, code = run("help")
        assert.are.equal(0, code)
        local verbs = {} -- names: the leading lower-case words of each usage in the list
        for usage in out:match("\nverbs:\n(.-)\n\n"):gmatch("  (%S.-)%s%s+[^\n]*") do
            local words = {}
            for w in usage:gmatch("%S+") do
                if not w:match("^%l+$") then break end
                words[#words + 1] = w
            end
            verbs[#verbs + 1] = table.concat(words, " ")
        end
        assert.is_true(#verbs >= 20, out)
        for _, v in ipairs(verbs) do
            local text, err, c = run(v .. " --help")
            assert.are.equal(0, c, v .. ": " .. err)
            local usage = "^usage: timenetctl %[options%] " .. v:gsub("%p", "%%%0")
            assert.is_truthy(text:find(usage), v .. ": " .. text)
        end
        local _, err, c = run("frobnicate")
        assert.are.equal(2, c)
        assert.are.equal("timenetctl: unknown verb 'frobnicate' (try: timenetctl help)\n", err)
        _, err, c = run("peers --frob")
        assert.are.equal(2, c)
        assert.is_truthy(has(err, "unknown option --frob"), err)
        _, err, c = run("policy")
        assert.are.equal(2, c)
        assert.is_truthy(has(err, "policy what?"), err)
        _, _, c = run("")
        assert.are.equal(2, c)
        out, _, c = run("--version")
        assert.are.equal(0, c)
        assert.is_truthy(out:find("^timenetctl %d+%.%d+%.%d+\n$"), out)
    end)

    it("says clearly when the node is not running or the socket is not accessible", function()
        H.with_net(function(net)
            -- no node at all
            local out, err, code = run("--datadir " .. net.dir .. "/nowhere status")
            assert.are.equal(3, code)
            assert.are.equal("", out)
            assert.are.equal("timenetctl: timenetd is not running: no control socket at " .. net.dir
                .. "/nowhere/control.sock (the node's data_dir/control.sock; use --datadir DIR, "
                .. "--socket PATH or --config FILE)\n", err)
            -- the same through --config and --socket
            local a = net:node("a")
            a:write_config()
            _, err, code = run("--config " .. a:config_path() .. " peers")
            assert.are.equal(3, code)
            assert.is_truthy(has(err, "no control socket at " .. a.cfg.data_dir .. "/control.sock"), err)
            _, err, code = run("--socket /dev/null status")
            assert.are.equal(3, code)
            assert.is_truthy(has(err, "/dev/null"), err)

            -- a node killed with -9 leaves a stale socket
            a:start()
            assert.are.equal(0, select(3, ctl(a, "status")))
            a:kill()
            _, err, code = ctl(a, "status")
            assert.are.equal(3, code)
            assert.are.equal("timenetctl: timenetd is not running: " .. a.cfg.data_dir
                .. "/control.sock is a stale socket (connection refused)\n", err)
            _, code = select(2, ctl(a, "--json bans"))
            assert.are.equal(3, code)

            -- another user: the socket is 0600 (only testable as root, with setpriv)
            a:start()
            if H.sh("id -u") == "0" and os.execute("command -v setpriv >/dev/null") then
                os.execute("chmod 755 " .. net.dir .. " " .. a.dir .. " " .. a.cfg.data_dir)
                -- a copy the other user can read (the checkout may sit in a 0700 directory)
                local ctl_copy = net.dir .. "/timenetctl"
                os.execute("cp " .. CTL .. " " .. ctl_copy .. " && chmod 755 " .. ctl_copy)
                local p = io.popen(string.format("setpriv --reuid=65534 --regid=65534 --clear-groups "
                    .. "%s --datadir %s status 2>&1; echo \"exit=$?\"", ctl_copy, a.cfg.data_dir))
                local text = p:read("a")
                p:close()
                assert.is_truthy(has(text, "permission denied (the control socket is mode 0600"), text)
                assert.is_truthy(has(text, "exit=3"), text)
            end

            -- stop: a graceful exit
            out, err, code = ctl(a, "stop")
            assert.are.equal(0, code, err)
            assert.are.equal("timenetd is stopping\n", out)
            H.wait(function() return a.exit_code ~= nil end, 10, "a to exit")
            assert.are.equal(0, a.exit_code)
        end)
    end)
end)
