-- The protocol experiments in examples/experiments/ (issue 9, "Tests that must exist"): each
-- loads, runs a few seconds on a 3-node demo network and produces its stated output. Also
-- the message-type API's edges: a node without the experiment ignores the type (counted,
-- not punished) and a reload rebuilds the registrations.
local H = require("harness")
local K = require("chainkit")
local D = require("demo")

local function run(args)
    local dir = H.sh("mktemp -d /tmp/tn-test.exp.XXXXXX")
    local all = { "DIR=" .. dir, "RUN=run", "QUIET=1", "TX_RATE=1" }
    for _, a in ipairs(args) do all[#all + 1] = a end
    local ok, r, err = pcall(D.run, D.parse_args(all))
    os.execute("rm -rf " .. dir)
    assert(ok, r)
    assert(r, err)
    return r
end

describe("examples/experiments", function()
    it("latency_probe prints an N x (N-1) RTT map within 15 ms of twice the injected delay", function()
        local delay = 30
        local r = run({ "N=3", "DURATION=5", "DELAY=" .. delay, "EXPERIMENTS=latency_probe", "SEED=21" })
        local rows = r.experiments.latency_probe
        local entries = 0
        for i = 1, 3 do
            local row = assert(rows["n" .. i], "no rtt_map line from n" .. i)
            local me = row:match("^rtt_map (%S+)")
            assert.are.equal("n" .. i, me)
            for peer, ms in row:gmatch("(n%d+)=([%d.]+)") do
                assert.are_not.equal(me, peer)
                ms = tonumber(ms)
                -- the proxy delays each direction by `delay`: one round trip crosses it twice
                assert.is_true(math.abs(ms - 2 * delay) <= 15,
                    string.format("%s -> %s: %.1f ms, injected 2 x %d", me, peer, ms, delay))
                entries = entries + 1
            end
        end
        assert.are.equal(3 * 2, entries)
    end)

    it("dup_penalty: the rule cuts duplicates against the default on the same seed", function()
        local common = { "N=6", "DEGREE=4", "DURATION=6", "EXPERIMENTS=dup_penalty", "SEED=8" }
        local base = run(common)
        local with = { table.unpack(common) }
        with[#with + 1] = "FEATURES=dup_penalty_rule"
        local rule = run(with)
        local a, b = base.propagation.rumor, rule.propagation.rumor
        io.stderr:write("\n" .. D.side_by_side({ default = base, dup_penalty_rule = rule }, "rumor") .. "\n")
        assert.is_true(a.objects > 20 and b.objects > 20)
        assert.is_true(a.delivery >= 0.99, "default delivery " .. a.delivery)
        assert.is_true(b.delivery >= 0.8, "rule delivery " .. b.delivery)
        assert.is_true(b.duplicates < a.duplicates, string.format("duplicates %d -> %d", a.duplicates,
            b.duplicates))
        for name, line in pairs(rule.experiments.dup_penalty) do
            assert.is_truthy(line:find("^rule=on relay_to=%d+/%d+ scores "), name .. ": " .. line)
        end
        for _, line in pairs(base.experiments.dup_penalty) do assert.is_truthy(line:find("^rule=off")) end
    end)

    it("relay_compare: push sends more bytes, announce-then-fetch takes longer", function()
        local r = run({ "N=3", "DURATION=6", "DELAY=20", "EXPERIMENTS=relay_compare", "SEED=3" })
        local push_b, fetch_b, push_ms, fetch_ms = 0, 0, {}, {}
        for name, line in pairs(r.experiments.relay_compare) do
            local pb, pg, pp, fb, fg, fp = line:match(
                "^push bytes=(%d+) got=(%d+) p50=([%d.]+); fetch bytes=(%d+) got=(%d+) p50=([%d.]+)$")
            assert(pb, name .. ": " .. line)
            assert.is_true(tonumber(pg) > 0 and tonumber(fg) > 0, line)
            push_b, fetch_b = push_b + tonumber(pb), fetch_b + tonumber(fb)
            push_ms[#push_ms + 1], fetch_ms[#fetch_ms + 1] = tonumber(pp), tonumber(fp)
        end
        -- a full mesh of 3: push sends each body 4 times, fetch twice
        assert.is_true(push_b > 1.5 * fetch_b, string.format("bytes push %d fetch %d", push_b, fetch_b))
        for i = 1, 3 do
            -- one hop: push ~ 1 delay, fetch ~ 3 (announce, request, body)
            assert.is_true(fetch_ms[i] > push_ms[i] + 20, string.format("p50 push %.1f fetch %.1f",
                push_ms[i], fetch_ms[i]))
        end
        assert.are.equal(1, r.propagation.push_block.delivery)
        assert.are.equal(1, r.propagation.blk_body.delivery)
    end)
end)

describe("Lua-defined message types", function()
    it("are ignored by a node without the experiment, and rebuilt by a reload", function()
        H.with_net(function(net)
            local dir = net.dir .. "/pol"
            os.execute(string.format("mkdir -p %s/lib && cp policies/*.lua %s/ && cp policies/lib/*.lua "
                .. "%s/lib/ && cp examples/experiments/latency_probe.lua %s/", dir, dir, dir, dir))
            local a = K.node(net, "a", { policy_dir = dir, features = { "latency_probe" }, min_peers = 0 })
            local b = K.node(net, "b", { min_peers = 0 }) -- shipped policies: no experiment
            b.cfg.persistent_peers = { a:addr() }
            a:start()
            b:start()
            K.wait_mesh({ a, b })
            local ignored = 'tn_messages_ignored_total{range="experiment"}'
            H.wait(function() return b:metric(ignored) >= 4 end, 5, "b to ignore probes")
            assert.are.equal(0, b:count("Invalid message"))
            assert.is_true(b:peer_row(a) ~= nil, "the session survives")
            local sent = 'tn_experiment_messages_total{name="probe",outcome="sent"}'
            assert.is_true(a:metric(sent) >= 4)
            -- a reload without the file: the type is gone, a's probes stop
            os.execute("rm " .. dir .. "/latency_probe.lua")
            assert.is_true(a:ctl("policy_reload").ok)
            H.sleep(0.5)
            local before = a:metric(sent)
            H.sleep(1)
            assert.are.equal(before, a:metric(sent))
        end)
    end)
end)
