-- Configuration files as an operator writes them: every kind of mistake is reported with
-- file:line and a non-zero exit, before anything starts (seed §28 Configurable Parameters).
local H = require("harness")

local function check(text)
    local dir = H.sh("mktemp -d /tmp/tn-test.XXXXXX")
    local path = dir .. "/node.conf"
    H.write_file(path, text)
    local p = io.popen(H.BIN .. " --check-config " .. path .. " 2>&1; echo \"rc=$?\"")
    local out = p:read("a")
    p:close()
    os.execute("rm -rf " .. dir)
    local rc = tonumber(out:match("rc=(%d+)%s*$"))
    return rc, out, path
end

local function expect_error(text, line, message)
    local rc, out, path = check(text)
    assert.are_not.equal(0, rc, out)
    assert.is_truthy(out:find(path .. ":" .. line .. ":", 1, true), "no file:line in: " .. out)
    assert.is_truthy(out:find(message, 1, true), "expected '" .. message .. "' in: " .. out)
end

describe("config", function()
    it("accepts a valid file", function()
        local rc, out = check([[
-- a comment
node_name = "LW-Michigan"
max_peers = 40
min_peers = max_peers // 5
heartbeat_interval = 0.5
persistent_peers = { "127.0.0.2:24100", "[::1]:24101" }
whitelist = { "127.0.0.9" }
reconnect_backoff = { 1, 2, 4 }
features = { "latency_probe" }
]])
        assert.are.equal(0, rc, out)
        assert.is_truthy(out:find(": ok", 1, true))
    end)

    it("names an unknown key and suggests the right one", function()
        expect_error("max_peers = 10\nmax_peer = 5\n", 2,
            "unknown key 'max_peer' (did you mean 'max_peers'?)")
    end)

    it("reports a wrong type", function()
        expect_error("\n\nmin_peers = \"eight\"\n", 3, "'min_peers' must be a number, got string")
    end)

    it("reports an out-of-range value", function()
        expect_error("heartbeat_interval = -1\n", 1, "'heartbeat_interval' = -1 is out of range")
    end)

    it("reports a fraction for an integer key", function()
        expect_error("max_peers = 7.5\n", 1, "'max_peers' must be a whole number")
    end)

    it("reports a syntax error", function()
        expect_error("max_peers = 10\nmin_peers = = 3\n", 2, "unexpected symbol")
    end)

    it("reports a value outside an enumeration", function()
        expect_error("network = \"moonnet\"\n", 1, "not one of testnet|mainnet")
    end)

    it("reports a bad address in a list", function()
        expect_error("seeds = {}\npersistent_peers = { \"127.0.0.1:80\", \"nohost\" }\n", 2,
            "'persistent_peers' entry 2 \"nohost\" is not an address")
    end)

    it("reports a bad listen address", function()
        expect_error("listen = \"localhost:24100\"\n", 1, "listen \"localhost:24100\" is not")
    end)

    it("reports min_peers above max_peers at the line that set it", function()
        expect_error("max_peers = 5\nmin_peers = 6\n", 2, "min_peers (6) is above max_peers (5)")
    end)

    it("reports reading an unknown name", function()
        expect_error("max_peers = maxpeers\n", 1, "unknown name 'maxpeers'")
    end)

    it("reports a list with named fields", function()
        expect_error("seeds = { first = \"127.0.0.1:1\" }\n", 1, "must be a list")
    end)

    it("stops a config that never finishes", function()
        expect_error("\nwhile true do end\n", 2, "takes too long")
    end)

    it("has no side effects: libraries are not reachable", function()
        expect_error("os.execute('true')\n", 1, "unknown name 'os'")
    end)

    it("refuses to start a node on a bad file", function()
        H.with_net(function(net)
            local a = net:node("a")
            a.cfg.max_peers = 0
            a:start({ wait = false })
            H.wait(function() return a.exit_code ~= nil end, 5, "exit")
            assert.are_not.equal(0, a.exit_code)
            assert.is_truthy(a:log():find("config error: .*:%d+: 'max_peers' = 0 is out of range"))
        end)
    end)

    it("--print-config output is itself a valid config with every default", function()
        local dir = H.sh("mktemp -d /tmp/tn-test.XXXXXX")
        local out = H.sh(H.BIN .. " --print-config > " .. dir .. "/all.conf; echo $?")
        assert.are.equal("0", out)
        local text = H.read_file(dir .. "/all.conf")
        assert.is_truthy(text:find("\nmax_peers = 50\n", 1, true))
        assert.is_truthy(text:find("\nheartbeat_interval = 30\n", 1, true))
        assert.is_truthy(text:find("\nreconnect_backoff = { 1, 2, 6, 12, 60 }\n", 1, true))
        local rc = check(text)
        os.execute("rm -rf " .. dir)
        assert.are.equal(0, rc)
    end)

    it("ships example configs that pass --check-config", function()
        for _, f in ipairs({ "examples/testnet.conf", "examples/mainnet.conf" }) do
            local out = H.sh(H.BIN .. " --check-config " .. f .. " 2>&1; echo rc=$?")
            assert.is_truthy(out:find("rc=0", 1, true), out)
        end
    end)
end)
