-- The policy host against a running node: hostile policies never take the node down (the
-- honest peer keeps its session and its pongs), each failure is counted and logged once,
-- reloads by directory change, SIGHUP and control socket, rejected reloads keep the old
-- rules, and persistent policy state survives reloads and restarts.
local H = require("harness")

local function policy_dir(net, name, files)
    local dir = net.dir .. "/" .. name
    os.execute("rm -rf " .. dir .. " && mkdir -p " .. dir)
    for file, text in pairs(files) do H.write_file(dir .. "/" .. file, text) end
    return dir
end

-- Writes a file the way editors do: a temp file renamed over the old one.
local function save(dir, file, text)
    H.write_file(dir .. "/." .. file .. ".tmp", text)
    assert(os.rename(dir .. "/." .. file .. ".tmp", dir .. "/" .. file))
end

local function score_policy(body)
    return "local M = {}\nfunction M.score(peer)\n" .. body .. "\nend\nreturn M\n"
end

-- A node running `dir` with an honest peer attached (fast heartbeats, fast scoring ticks).
local function node_with_peer(net, dir, extra)
    local honest = net:node("honest", { heartbeat_interval = 0.3 })
    local cfg = { policy_dir = dir, policy_tick_interval = 0.1, heartbeat_interval = 0.3,
                  policy_breaker_errors = 1000000 }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    local n = net:node("node", cfg)
    honest:start()
    n.cfg.persistent_peers = { honest:addr() }
    n:start()
    n:wait_connected({ honest })
    return n, honest
end

-- The honest peer's session survives and keeps answering pings for `seconds`.
local function assert_honest_alive(n, honest, seconds)
    local before = n:peer_row(honest)
    H.sleep(seconds or 1.5)
    local after = n:peer_row(honest)
    assert.is_truthy(after, "honest session gone")
    assert.are.equal(before.session, after.session, "honest session replaced")
    assert.is_true(after.pongs >= before.pongs + 3, "pongs " .. before.pongs .. " -> " .. after.pongs)
    assert.is_true(n:running())
end

local HOSTILE = {
    { "backtracking pattern", 'string.find(("a"):rep(60), ("a*"):rep(6) .. "b") return 1',
      "pattern too complex" },
    { "endless loop", "while true do end", "CPU budget" },
    { "endless loop in a coroutine", "local co = coroutine.create(function() while true do end end)\n"
        .. "coroutine.resume(co) return 1", "CPU budget" },
    { "pcall swallowing the budget", "while true do pcall(function() while true do end end) end",
      "CPU budget" },
    { "__gc finalizer", "setmetatable({}, { __gc = function() while true do end end }) return 1",
      "__gc metamethods are not allowed" },
    { "huge string.rep", 'return #string.rep("x", 1e9)', "string.rep result above" },
    -- the stack outgrows the memory cap, overflows or runs out of time, whichever comes first
    { "deep recursion", "local function f(n) return f(n + 1) + 1 end return f(1)",
      { "stack overflow", "out of memory", "CPU budget" } },
    { "wrong type", 'return "high"', "returned string, expected a finite number" },
    { "NaN", "return 0/0", "returned NaN or infinity" },
    { "error on every call", 'error("boom")', "boom" },
    -- near the cap every allocation runs a full collection: the budget may stop it first
    { "allocating until the cap", "local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1000) .. i end",
      { "out of memory", "CPU budget" } },
}

describe("policy host", function()
    for _, case in ipairs(HOSTILE) do
        local name, body, message = case[1], case[2], case[3]
        it("survives a hostile score hook: " .. name, function()
            H.with_net(function(net)
                local dir = policy_dir(net, "pol", { ["score.lua"] = score_policy(body) })
                local n, honest = node_with_peer(net, dir, { policy_memory_max = 8 * 1048576 })
                H.wait(function() return n:metric('tn_policy_hook_errors_total{hook="score"}') >= 3 end,
                    15, "three failed score calls")
                assert_honest_alive(n, honest)
                -- one line per error kind, never one per call
                local seen, lines = {}, 0
                for line in n:log():gmatch("hook score failed: ([^\n]*)") do
                    assert.is_nil(seen[line], "logged twice: " .. line)
                    seen[line], lines = true, lines + 1
                end
                local messages = type(message) == "table" and message or { message }
                assert.is_true(lines >= 1 and lines <= #messages, lines .. " lines")
                local named = false
                for l in pairs(seen) do
                    for _, m in ipairs(messages) do named = named or l:find(m, 1, true) ~= nil end
                end
                assert.is_true(named, "the log names the cause")
                assert.is_true(n:metric('tn_policy_hook_fallbacks_total{hook="score"}') >= 3)
                local st = n:ctl("policy_status").policy
                assert.is_true(st.hooks.score.errors >= 3)
                assert.are.equal(0, n:peer_row(honest).score, "the C default score applies")
            end)
        end)
    end

    it("opens the circuit breaker after policy_breaker_errors consecutive errors", function()
        H.with_net(function(net)
            local dir = policy_dir(net, "pol", { ["score.lua"] = score_policy('error("always")') })
            local n, honest = node_with_peer(net, dir, { policy_breaker_errors = 5 })
            n:wait_log("Policy circuit breaker open", 10)
            local st = n:ctl("policy_status").policy
            assert.are.equal("open", st.breaker)
            local calls = st.hooks.score.calls
            assert_honest_alive(n, honest, 1)
            st = n:ctl("policy_status").policy
            assert.are.equal(calls, st.hooks.score.calls, "no calls while the breaker is open")
            assert.is_true(st.hooks.score.fallbacks > 5)
            assert.are.equal(1, n:count("Policy circuit breaker open"))
            -- a successful reload closes it
            save(dir, "score.lua", score_policy("return 42"))
            local r = n:ctl("policy_reload")
            assert.is_true(r.ok, r.error)
            H.wait(function() return n:peer_row(honest).score == 42 end, 5, "the new score")
            assert.are.equal("closed", n:ctl("policy_status").policy.breaker)
        end)
    end)

    it("reloads on a directory change, on SIGHUP and on the control command", function()
        H.with_net(function(net)
            local dir = policy_dir(net, "pol", { ["score.lua"] = score_policy("return 1") })
            local n, honest = node_with_peer(net, dir)
            H.wait(function() return n:peer_row(honest).score == 1 end, 5, "score 1")
            save(dir, "score.lua", score_policy("return 2"))
            n:wait_log("Policy generation 2 loaded", 5)
            assert.is_truthy(n:log():find("generation 2 loaded from [^\n]*%(directory change%)"))
            H.wait(function() return n:peer_row(honest).score == 2 end, 5, "score 2")
            n:signal("sighup")
            n:wait_log("Policy generation 3 loaded", 5)
            assert.is_truthy(n:log():find("generation 3 loaded from [^\n]*%(SIGHUP%)"))
            local r = n:ctl("policy_reload")
            assert.is_true(r.ok)
            assert.are.equal("policy generation 4 loaded", r.result)
            assert.are.equal(4, n:ctl("policy_status").policy.generation)
            assert_honest_alive(n, honest, 1)
        end)
    end)

    it("rejects a broken file and a failing self-test with file:line, keeping the old rules", function()
        H.with_net(function(net)
            local dir = policy_dir(net, "pol", { ["score.lua"] = score_policy("return 7") })
            local n, honest = node_with_peer(net, dir, { policy_reload_debounce = 30 })
            H.wait(function() return n:peer_row(honest).score == 7 end, 5, "score 7")
            save(dir, "score.lua", "local M = {}\nfunction M.score(peer)\n  return = 8\nend\nreturn M\n")
            local r = n:ctl("policy_reload")
            assert.is_false(r.ok)
            assert.is_truthy(r.error:find(dir .. "/score.lua:3:", 1, true), r.error)
            assert.is_truthy(r.error:find("policy generation 1 is still active", 1, true), r.error)
            save(dir, "score.lua", "local M = {}\nfunction M.score() return 8 end\n"
                .. "M.tests = { eight = function()\n  assert(M.score() == 9, 'score is not 9')\nend }\n"
                .. "return M\n")
            r = n:ctl("policy_reload")
            assert.is_false(r.ok)
            assert.is_truthy(r.error:find(dir .. "/score.lua:4: score is not 9", 1, true), r.error)
            assert.is_truthy(r.error:find("self-test eight failed", 1, true), r.error)
            H.sleep(0.5)
            assert.are.equal(7, n:peer_row(honest).score, "old rules still apply")
            assert.are.equal(1, n:ctl("policy_status").policy.generation)
            assert.are.equal(2, n:count("Policy reload (control socket) rejected"))
            assert_honest_alive(n, honest, 1)
        end)
    end)

    it("applies an edited reconnect rule to the next decision without a restart", function()
        H.with_net(function(net)
            local rule = "local M = {}\nfunction M.reconnect(peer, attempt, reason) return %s end\n"
                .. "return M\n"
            local dir = policy_dir(net, "pol", { ["failover.lua"] = rule:format("0.3") })
            local down = net:node("down")
            local n = net:node("node", { policy_dir = dir })
            n.cfg.persistent_peers = { down:addr() } -- never started: every dial fails
            n:start()
            n:wait_log("in 0.3 s", 5, 2)
            save(dir, "failover.lua", rule:format("0.7"))
            n:wait_log("Policy generation 2 loaded", 5)
            n:wait_log("in 0.7 s", 5, 2)
            -- after the reload every decision follows the new rule
            local log = n:log()
            local after = log:sub(log:find("Policy generation 2 loaded", 1, true))
            assert.is_nil(after:find("in 0.3 s", 1, true))
        end)
    end)

    it("keeps a policy's strikes across a reload and a restart", function()
        H.with_net(function(net)
            -- counts wrong magics per IP in persistent state; bans on the third
            local bans = [[
local M = {}
local strikes = tn.persist("test_strikes", 1, function() return {} end)
function M.on_misbehavior(peer, kind)
  local n = (strikes[peer.ip] or 0) + 1
  strikes[peer.ip] = n
  if n >= 3 then return "ban", 60 end
  return "disconnect"
end
return M
]]
            local dir = policy_dir(net, "pol", { ["bans.lua"] = bans })
            local n = net:node("node", { policy_dir = dir, policy_tick_interval = 0.1 })
            n:start()
            local socket = require("socket")
            local host, port = n:addr():match("^(.*):(%d+)$")
            local src = net.block .. ".200"
            local function wrong_magic()
                local c = assert(socket.tcp())
                assert(c:bind(src, 0))
                c:settimeout(5)
                assert(c:connect(host, tonumber(port)))
                c:send("XXXX" .. string.rep("\0", 44))
                c:receive("*a") -- until the node closes
                c:close()
            end
            wrong_magic()
            wrong_magic()
            n:wait_log("Wrong network magic from " .. src, 5, 2)
            assert.is_true(n:ctl("policy_reload").ok)
            wrong_magic()
            n:wait_log("Banned " .. src, 5)
            assert.are.equal(src, n:ctl("bans").bans[1].ip)
            -- restart: the C-side strike counts start from zero, the policy's do not
            assert.is_true(n:ctl({ cmd = "policy_status" }).ok)
            H.sleep(0.3) -- a tick saves the state
            n:stop()
            n:start()
            assert.are.equal(src, n:ctl("bans").bans[1].ip, "the ban survived the restart")
        end)
    end)

    it("migrates persistent state when its version changes, and resets it without migrate", function()
        H.with_net(function(net)
            local v1 = [[
local M = {}
local st = tn.persist("counter", 1, function() return { n = 0 } end)
function M.score() st.n = st.n + 1 return st.n end
return M
]]
            local v2 = [[
local M = {}
local st = tn.persist("counter", 2, function() return { total = 0 } end,
  function(old, version) return { total = old.n * 1000, from = version } end)
function M.score() return st.total + st.from end
return M
]]
            local v3 = [[
local M = {}
local st = tn.persist("counter", 3, function() return { fresh = 5 } end)
function M.score() return st.fresh end
return M
]]
            local dir = policy_dir(net, "pol", { ["score.lua"] = v1 })
            local n, honest = node_with_peer(net, dir, { policy_reload_debounce = 30 })
            H.wait(function() return n:peer_row(honest).score >= 3 end, 5, "the counter to run")
            save(dir, "score.lua", v2)
            assert.is_true(n:ctl("policy_reload").ok)
            -- total = n * 1000 + 1 (the version migrated from)
            H.wait(function() local sc = n:peer_row(honest).score
                return sc >= 3001 and sc % 1000 == 1 end, 5, "the migrated state")
            save(dir, "score.lua", v3)
            assert.is_true(n:ctl("policy_reload").ok)
            H.wait(function() return n:peer_row(honest).score == 5 end, 5, "the reset state")
            assert.are.equal(1, n:count("state 'counter' reset: version 2 -> 3 and no migrate function"))
        end)
    end)
end)
