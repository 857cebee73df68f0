-- Record and replay (issue 4, "Policy test kit"): a real node with policy_record set writes
-- one JSON line per hook decision; the kit replays the recording against a policy directory
-- and lists the decisions that would change. An unedited copy of policies/ changes none; an
-- edited backoff changes exactly the redials it governs; an edited strike limit changes the
-- ban verdicts, replayed in order through the policy's persistent state.
local H = require("harness")
local kit = require("policykit")

local SRC = "policies"

local function copy_policies(to)
    assert(os.execute("cp -r " .. SRC .. " '" .. to .. "'"))
    return to
end

local function edit(dir, file, from, to)
    local path = dir .. "/" .. file
    local text = assert(H.read_file(path))
    local s, e = text:find(from, 1, true)
    assert(s, "no '" .. from .. "' in " .. path)
    H.write_file(path, text:sub(1, s - 1) .. to .. text:sub(e + 1))
end

-- Three connections from src that open with the wrong network magic (strikes 1-3: a ban).
local function wrong_magics(node, src, n)
    local socket = require("socket")
    local host, port = node:addr():match("^(.*):(%d+)$")
    for _ = 1, n do
        local c = assert(socket.tcp())
        assert(c:bind(src, 0))
        c:settimeout(5)
        if c:connect(host, tonumber(port)) then
            c:send("XXXX" .. string.rep("\0", 44))
            c:receive("*a") -- until the node closes
        end
        c:close()
    end
end

describe("policy replay", function()
    local net, node, recording, records, src

    lazy_setup(function()
        net = H.net()
        local ok, err = xpcall(function()
            local unedited = copy_policies(net.dir .. "/unedited")
            recording = net.dir .. "/decisions.jsonl"
            local down = net:node("down") -- never started: every dial to it fails
            local up = net:node("up")
            node = net:node("node", {
                policy_dir = unedited,
                policy_record = recording,
                policy_tick_interval = 0.2, -- a score decision per peer every 0.2 s
                reconnect_delay = 0.05,     -- redials at 0.1, 0.3 s, then give up...
                reconnect_max_attempts = 3,
                reconnect_cooldown = 0.5,   -- ...and start over after 0.5 s
            })
            node.cfg.persistent_peers = { down:addr(), up:addr() }
            up:start()
            node:start()
            node:wait_connected({ up })
            src = net.block .. ".200"
            wrong_magics(node, src, 3)
            node:wait_log("Banned " .. src, 5)
            H.wait(function()
                local text = H.read_file(recording) or ""
                local _, cycles = text:gsub('"hook":"reconnect"[^\n]*"args":%[1,', "")
                local _, scores = text:gsub('"hook":"score"', "")
                return cycles >= 3 and scores >= 3
            end, 15, "three redial cycles and three scores in the recording")
            node:stop()
            records = kit.read_recording(recording)
        end, debug.traceback)
        if not ok then
            net:cleanup(true)
            error(err, 0)
        end
    end)

    lazy_teardown(function()
        if net then net:cleanup() end
    end)

    it("records every kind of decision the node made", function()
        local hooks = {}
        for _, r in ipairs(records) do hooks[r.hook] = (hooks[r.hook] or 0) + 1 end
        assert.is_true(hooks.reconnect >= 6, "reconnect decisions")
        assert.are.equal(3, hooks.on_misbehavior)
        assert.is_true(hooks.score >= 3, "score decisions")
        local gave_up = 0
        for _, r in ipairs(records) do
            if r.hook == "reconnect" and r.result == false then gave_up = gave_up + 1 end
        end
        assert.is_true(gave_up >= 2, "give-ups recorded as false")
    end)

    it("shows 0 changed decisions against an unedited copy of policies/", function()
        local r = kit.replay(recording, copy_policies(net.dir .. "/copy"), { config = node:config_path() })
        assert.are.equal(#records, r.total)
        assert.are.same({}, r.changed)
        assert.are.same({}, r.errors)
        -- what the recording cannot rebuild (peer fields it lacks) is set apart, never "changed"
        for _, row in ipairs(r.incomparable) do assert.are.equal("score", row.hook) end
        local comparable = 0
        for _, rec in ipairs(records) do
            if rec.hook ~= "score" then comparable = comparable + 1 end
        end
        assert.is_true(r.same >= comparable, "every redial and verdict replayed the same")
    end)

    it("lists the redials an edited backoff would change, and only those", function()
        local dir = copy_policies(net.dir .. "/edited")
        edit(dir, "failover.lua", "local BACKOFF = tn.config.reconnect_backoff",
            "local BACKOFF = { 1, 3, 6, 12, 60 }")
        local r = kit.replay(recording, dir, { config = node:config_path() })
        local expected = {}
        for i, rec in ipairs(records) do
            if rec.hook == "reconnect" and rec.args[1] == 1 then expected[#expected + 1] = i end
        end
        assert.is_true(#expected >= 3)
        assert.are.equal(#expected, #r.changed)
        for k, c in ipairs(r.changed) do
            assert.are.equal(expected[k], c.index)
            assert.are.equal("reconnect", c.hook)
            assert.are.equal("0.1", c.old) -- 0.05 s x 2
            assert.are.equal("0.15", c.new) -- 0.05 s x 3
            assert.are.equal(records[c.index].peer.addr, c.peer)
        end
    end)

    it("replays ban verdicts in order through the policy's state", function()
        local dir = copy_policies(net.dir .. "/strict")
        edit(dir, "bans.lua", "local STRIKE_LIMIT = tn.config.strike_limit", "local STRIKE_LIMIT = 2")
        local r = kit.replay(recording, dir, { config = node:config_path() })
        local verdicts = {}
        for _, c in ipairs(r.changed) do
            assert.are.equal("on_misbehavior", c.hook)
            assert.are.equal(src, records[c.index].peer.ip)
            verdicts[#verdicts + 1] = c.old .. " -> " .. c.new
        end
        -- the 2nd wrong magic now bans; the 3rd, after that ban, is a first strike again
        assert.are.same({ "disconnect -> ban 300", "ban 300 -> disconnect" }, verdicts)
    end)

    it("has a command line: lua5.4 tests/lib/policykit.lua replay RECORDING DIR [CONFIG]", function()
        local dir = copy_policies(net.dir .. "/cli")
        edit(dir, "failover.lua", "local BACKOFF = tn.config.reconnect_backoff",
            "local BACKOFF = { 1, 3, 6, 12, 60 }")
        local p = io.popen("lua5.4 tests/lib/policykit.lua replay '" .. recording .. "' '" .. dir .. "' '"
            .. node:config_path() .. "' 2>&1")
        local out = p:read("a")
        local ok, how, code = p:close()
        assert.is_true(ok, out)
        assert.are.same({ "exit", 0 }, { how, code })
        local n = 0
        for line in out:gmatch("[^\n]+") do
            if line:match("^#%d+ reconnect .* %[1,.*%]: 0%.1 %-> 0%.15$") then n = n + 1 end
        end
        local changed, total = out:match("changed: (%d+) of (%d+) decisions")
        assert.are.equal(n, tonumber(changed), out)
        assert.is_true(n >= 3, out)
        assert.are.equal(#records, tonumber(total))
    end)
end)
