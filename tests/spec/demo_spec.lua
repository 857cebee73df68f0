-- `make demo` (issue 9, "Tests that must exist"): a 5-node demo comes up, all connected, one
-- block per slot, and shuts down leaving no process — at DURATION, and on SIGTERM in the
-- middle of a run with faults (a node killed and restarted, a partition healed).
local H = require("harness")
local uv = require("luv")
local json = require("dkjson")

-- Starts the demo driver as its own process (as `make demo` does); returns a handle table.
local function spawn_demo(dir, args)
    local env = {}
    for _, k in ipairs({ "PATH", "LUA_PATH", "LUA_CPATH", "HOME", "BUILD" }) do
        local v = os.getenv(k)
        if v then env[#env + 1] = k .. "=" .. v end
    end
    local out = dir .. "/demo.out"
    local fd = assert(uv.fs_open(out, "w", 420))
    local d = { out = out }
    local all = { "tests/lib/demo.lua", "DIR=" .. dir, "RUN=run", "QUIET=1" }
    for _, a in ipairs(args) do all[#all + 1] = a end
    d.handle, d.pid = uv.spawn("lua5.4", { args = all, env = env, stdio = { nil, fd, fd } },
        function(code, signal)
            d.code, d.signal = code, signal
            d.handle:close()
        end)
    uv.fs_close(fd)
    assert(d.handle, "cannot spawn the demo: " .. tostring(d.pid))
    return d
end

-- Every pid the demo wrote to its pids file so far, added to `seen`.
local function note_pids(dir, seen)
    local s = H.read_file(dir .. "/run/pids") or ""
    for p in s:gmatch("%d+") do seen[tonumber(p)] = true end
end

-- A process that is ours and still alive (pid reuse: check what it runs).
local function alive(pid)
    local cmd = H.read_file("/proc/" .. pid .. "/cmdline")
    return cmd ~= nil and (cmd:find("timenetd", 1, true) or cmd:find("lua5.4", 1, true)) ~= nil
end

local function with_dir(body)
    local dir = H.sh("mktemp -d /tmp/tn-test.demo.XXXXXX")
    local d
    local ok, err = xpcall(function() d = body(dir, function(x) d = x end) end, debug.traceback)
    if d and d.handle and not d.code then d.handle:kill("sigkill") end
    if not ok then io.stderr:write(H.read_file(dir .. "/demo.out") or "", "\n") end
    os.execute("rm -rf " .. dir)
    if not ok then error(err, 0) end
end

describe("make demo", function()
    it("5 nodes come up all connected, one block per slot, and leave no process at DURATION", function()
        with_dir(function(dir, keep)
            local d = spawn_demo(dir, { "N=5", "DURATION=8", "BLOCK_INTERVAL=0.5", "SEED=11", "TX_RATE=4" })
            keep(d)
            local seen = {}
            H.wait(function()
                note_pids(dir, seen)
                return d.code ~= nil
            end, 60, "the demo to finish")
            assert.are.equal(0, d.code, H.read_file(d.out))
            local r = json.decode(assert(H.read_file(dir .. "/run/results.json")))
            -- all connected: a full mesh of 5 (4 peers each) at the end
            for i = 1, 5 do assert.are.equal(4, r.peers["n" .. i], "peers of n" .. i) end
            -- one block per slot: every slot from the first to the last has exactly one
            local c = r.chain
            assert.is_true(c.produced >= 10, "blocks produced: " .. c.produced)
            assert.are.equal(0, c.empty_slots, "empty slots")
            assert.are.equal(0, c.double_slots, "slots with two blocks")
            assert.are.equal(c.slots, c.produced)
            assert.are.equal(5, c.tips_agree, "nodes on one tip")
            -- transactions spread: every one reached every node
            assert.is_true(r.propagation.tx.objects > 10)
            assert.are.equal(1, r.propagation.tx.delivery)
            assert.are.equal(1, r.propagation.block.delivery)
            -- the manifest sits beside the results
            local m = json.decode(assert(H.read_file(dir .. "/run/manifest.json")))
            assert.are.equal(11, m.seed)
            assert.are.equal(10, #m.topology.edges)
            assert.is_truthy(m.build.version:find("timenetd", 1, true))
            -- nothing left running
            local n = 0
            for pid in pairs(seen) do
                n = n + 1
                assert.is_false(alive(pid), "process " .. pid .. " still running")
            end
            assert.is_true(n >= 5)
            local out = H.read_file(d.out)
            assert.is_truthy(out:find("blocks  ", 1, true))
            io.stderr:write(string.format("\n[demo_spec] RSS per node: max %.1f MiB, %d blocks in %d slots\n",
                r.rss_kb.max / 1024, c.produced, c.slots))
        end)
    end)

    it("drops packets with nftables in network namespaces (LOSS=), the chain still agrees", function()
        local NS = require("netns")
        local ok, why = NS.available()
        if not ok then
            pending("packet loss needs root, ip and nft: " .. why)
            return
        end
        with_dir(function(dir, keep)
            local d = spawn_demo(dir, { "N=3", "DURATION=6", "BLOCK_INTERVAL=0.5", "SEED=7", "LOSS=10" })
            keep(d)
            H.wait(function() return d.code ~= nil end, 60, "the demo to finish")
            assert.are.equal(0, d.code, H.read_file(d.out))
            local r = json.decode(assert(H.read_file(dir .. "/run/results.json")))
            assert.is_true(r.packets_dropped > 0, "packets dropped")
            assert.is_true(r.chain.produced >= 5)
            -- under loss the newest block may still be on its way to one node
            assert.are.equal(3, r.chain.running)
            assert.is_true(r.chain.height_max - r.chain.height_min <= 1)
            -- the run's namespaces are gone
            assert.are.same({}, r.netns_left)
        end)
    end)

    it("stops every process on SIGTERM, during faults", function()
        with_dir(function(dir, keep)
            local d = spawn_demo(dir, { "N=4", "DURATION=0", "BLOCK_INTERVAL=0.5", "SEED=5",
                "FAULTS=1 kill n2; 2 restart n2; 2.5 partition n1|n3,n4; 3.5 heal" })
            keep(d)
            local seen = {}
            local t0 = H.now()
            H.wait(function()
                note_pids(dir, seen)
                if d.code then error("demo exited early: " .. (H.read_file(d.out) or "")) end
                return H.now() - t0 > 5 and (H.read_file(d.out) or ""):find("heal", 1, true)
            end, 30, "the faults to run")
            d.handle:kill("sigterm")
            H.wait(function()
                note_pids(dir, seen)
                return d.code ~= nil
            end, 30, "the demo to stop")
            assert.are.equal(0, d.code, H.read_file(d.out))
            local r = json.decode(assert(H.read_file(dir .. "/run/results.json")))
            assert.are.equal("sigterm", r.stop_reason)
            local out = H.read_file(d.out)
            assert.is_truthy(out:find("fault at 1s: kill n2", 1, true))
            assert.is_truthy(out:find("fault at 2s: restart n2", 1, true))
            local n = 0
            for pid in pairs(seen) do
                n = n + 1
                assert.is_false(alive(pid), "process " .. pid .. " still running")
            end
            assert.is_true(n >= 5, "pids seen: " .. n) -- 4 nodes and n2 a second time
        end)
    end)
end)
