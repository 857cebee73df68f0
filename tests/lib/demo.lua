-- `make demo`: a local testnet of real timenetd processes, built on the test harness
-- (tests/lib/harness.lua: one harness for tests, benches and the demo).
--
--   lua5.4 tests/lib/demo.lua [N=5] [DURATION=0] [SEED=n] [DEGREE=d | TOPOLOGY=file]
--        [BLOCK_INTERVAL=1] [TX_RATE=2] [TX_SIZE=200] [DELAY=ms] [LOSS=pct]
--        [FAULTS="10 kill n3; 15 restart n3; ..." | FAULTS=file] [EXPERIMENTS=a,b]
--        [FEATURES=a,b] [RUN=name] [DIR=var/demo] [QUIET=1]
--
-- N nodes on 127.A.B.C, each with its own data dir under var/demo/<run>/<node>/, share a
-- demo genesis (genesis_time = start) and a masternode set (every node, keys generated), a
-- short block interval and a small memory profile. The driver prints where everything is,
-- streams the important log lines of all nodes (prefixed by node name), submits a trickle
-- of transactions, applies scheduled faults, and stops every process it started on Ctrl-C,
-- SIGTERM or after DURATION seconds (0 = until stopped). Every node writes a propagation
-- trace; the end-of-run report (delivery and latency percentiles, blocks per slot, RSS per
-- node, experiment output) is printed and saved as results.json beside manifest.json (build,
-- config, seed, topology, faults).
--
-- Topology: DEGREE=d generates a connected random graph (a random spanning tree, then random
-- links until every node has d), from SEED; default a full mesh up to 6 nodes, else d = 4.
-- TOPOLOGY=file: lines "A B [delay_ms] [loss_pct]" (A dials B; names n1..nN or indexes;
-- `#` comments; "nodes N" sets N). DELAY and LOSS apply to every link without its own.
-- Faults (seconds after start): "T kill NODE", "T stop NODE", "T restart NODE",
-- "T partition A,B|C,D" (control socket block/unblock), "T heal", "T delay A B MS" (a link
-- through the delay proxy), "T loss A B PCT" (namespaces only).
-- Latency: links with a delay go through tests/lib/delayproxy.lua (one process). Loss: with
-- root, `ip` and `nft`, every node runs in its own network namespace (tests/lib/netns.lua)
-- and nftables drops packets (measured: "loss" in the report); without them the run stops
-- with a note saying what is missing.
-- Latency and loss cannot be combined in one run (the delay proxy lives on loopback).
local H = require("harness")
local K = require("chainkit")
local TR = require("trace")
local T = require("timenet")
local uv = require("luv")
local json = require("dkjson")

local D = {}

-- The demo's node profile: test-scale intervals and small memory bounds, so 100 nodes fit
-- one machine (README "Local testnet" has the measured RSS).
D.PROFILE = {
    heartbeat_interval = 2,
    pong_deadline = 1,
    handshake_timeout = 5,
    connection_timeout = 5,
    reconnect_delay = 0.5,
    reconnect_backoff = { 1, 2, 4 },
    reconnect_cooldown = 5,
    status_interval = 30,
    sync_interval = 2,
    sync_timeout = 2,
    relay_request_timeout = 1,
    dedup_capacity = 20000,
    dedup_window = 120,
    mempool_max_txs = 5000,
    mempool_max_bytes = 4194304,
    max_block_size = 1048576,
    policy_memory_max = 8388608,
    policy_tick_interval = 1,
    store_flush_interval = 0.1,
    min_peers = 0,
    max_peers = 200,
    log_level = "info",
    log_fold_window = 2,
    clock_skew = 2,
}

-- Log lines worth a researcher's attention, streamed while the demo runs.
D.IMPORTANT = { "Connected to peer", "Reconnected", " lost ", "Disconnected", "Produced block",
    "Reorg", "Equivocation", "Syncing", "Synced", "Shutting down", " WARN ", " ERROR ",
    "Policy: ", "started:" }

local function log(fmt, ...)
    io.stdout:write(os.date("%H:%M:%S") .. " [demo] " .. string.format(fmt, ...) .. "\n")
    io.stdout:flush()
end

---------------------------------------------------------------------------- options

function D.parse_args(argv)
    local o = { DURATION = 0, BLOCK_INTERVAL = 1, TX_RATE = 2, TX_SIZE = 200,
        DELAY = 0, LOSS = 0, FAULTS = "", EXPERIMENTS = "", FEATURES = "", DIR = "var/demo" }
    for _, a in ipairs(argv) do
        local k, v = a:match("^([%u_]+)=(.*)$")
        if not k then error("usage: KEY=VALUE arguments (N=, DURATION=, SEED=, ...), got " .. a, 0) end
        if v ~= "" then o[k] = tonumber(v) or v end
    end
    o.SEED = tonumber(o.SEED) or os.time()
    return o
end

---------------------------------------------------------------------------- topology

-- A connected random graph: node i > 1 dials a random earlier node (a spanning tree), then
-- random extra links until every node has `degree` links (or no pair is left).
function D.generate(n, degree, rng)
    local edges, has, deg = {}, {}, {}
    for i = 1, n do deg[i] = 0 end
    local function add(a, b)
        local k = math.min(a, b) .. "-" .. math.max(a, b)
        if a == b or has[k] then return false end
        has[k] = true
        edges[#edges + 1] = { a = a, b = b }
        deg[a], deg[b] = deg[a] + 1, deg[b] + 1
        return true
    end
    for i = 2, n do add(i, rng(1, i - 1)) end
    degree = math.min(degree, n - 1)
    for i = 1, n do
        local tries = 0
        while deg[i] < degree and tries < 20 * n do
            tries = tries + 1
            local j = rng(1, n)
            if deg[j] < degree or tries > 10 * n then add(i, j) end
        end
    end
    return edges
end

-- Reads a topology file: returns n (or nil) and edges.
function D.read_topology(path)
    local f = assert(io.open(path, "r"), "cannot read topology file " .. path)
    local n, edges = nil, {}
    local ln = 0
    local function idx(s)
        local i = tonumber(s) or tonumber(s:match("^n(%d+)$"))
        if not i then error(string.format("%s:%d: node %q is not nK or K", path, ln, s), 0) end
        return i
    end
    for line in f:lines() do
        ln = ln + 1
        line = line:gsub("#.*", "")
        local w = {}
        for x in line:gmatch("%S+") do w[#w + 1] = x end
        if w[1] == "nodes" then
            n = tonumber(w[2])
        elseif #w >= 2 then
            edges[#edges + 1] = { a = idx(w[1]), b = idx(w[2]), delay_ms = tonumber(w[3]),
                loss = tonumber(w[4]) }
        end
    end
    f:close()
    return n, edges
end

-- Faults: "T action args" separated by ';' or newlines (or a file of them).
function D.parse_faults(spec)
    if spec ~= "" and not spec:find("[;\n]") and io.open(spec, "r") then
        local f = io.open(spec, "r")
        spec = f:read("a")
        f:close()
    end
    local out = {}
    for item in tostring(spec):gmatch("[^;\n]+") do
        item = item:gsub("#.*", "")
        local at, action, rest = item:match("^%s*([%d.]+)%s+(%a+)%s*(.-)%s*$")
        if at then
            out[#out + 1] = { at = tonumber(at), action = action, args = rest }
        elseif item:match("%S") then
            error("fault " .. item .. ": expected 'SECONDS ACTION ARGS'", 0)
        end
    end
    table.sort(out, function(x, y) return x.at < y.at end)
    return out
end

---------------------------------------------------------------------------- helpers

local function git_rev()
    local ok, rev = pcall(H.sh, "git rev-parse --short HEAD 2>/dev/null")
    return ok and rev ~= "" and rev or "unknown"
end

-- A policy directory for nodes running experiments: the shipped policies plus each
-- examples/experiments/NAME.lua.
local function policy_dir(run_dir, experiments)
    if #experiments == 0 then return H.sh("pwd") .. "/policies" end
    local dir = run_dir .. "/policies"
    os.execute(string.format(
        "mkdir -p '%s/lib' && cp policies/*.lua '%s/' && cp policies/lib/*.lua '%s/lib/'", dir, dir, dir))
    for _, e in ipairs(experiments) do
        local src = "examples/experiments/" .. e .. ".lua"
        assert(io.open(src, "r"), "no experiment " .. src)
        os.execute(string.format("cp '%s' '%s/'", src, dir))
    end
    return dir
end

local function split(s, sep)
    local out = {}
    for x in tostring(s or ""):gmatch("[^" .. sep .. "]+") do
        x = x:match("^%s*(.-)%s*$")
        if x ~= "" then out[#out + 1] = x end
    end
    return out
end

-- Streams new lines of every node's log: only D.IMPORTANT ones, date dropped.
local function make_streamer(nodes, quiet)
    local offsets = {}
    return function()
        for _, n in ipairs(nodes) do
            local f = io.open(n.log_path, "rb")
            if f then
                f:seek("set", offsets[n] or 0)
                local data = f:read("a") or ""
                f:close()
                local cut = data:match(".*\n()") -- keep a partial last line for next time
                if cut then
                    offsets[n] = (offsets[n] or 0) + cut - 1
                    if not quiet then
                        for line in data:sub(1, cut - 1):gmatch("[^\n]+") do
                            for _, pat in ipairs(D.IMPORTANT) do
                                if line:find(pat, 1, true) then
                                    local short = line:gsub("^%d+%-%d+%-%d+ ", ""):gsub(" INFO ", " ")
                                    io.stdout:write(short, "\n")
                                    break
                                end
                            end
                        end
                        io.stdout:flush()
                    end
                end
            end
        end
    end
end

---------------------------------------------------------------------------- the run

-- Runs the demo; returns the results table. opts as from D.parse_args.
function D.run(o)
    local seed = o.SEED
    math.randomseed(seed)
    local rng = math.random
    local topo_n, edges
    if o.TOPOLOGY then topo_n, edges = D.read_topology(o.TOPOLOGY) end
    local n = math.floor(tonumber(o.N or topo_n or 5))
    assert(n >= 1 and n <= 250, "N must be 1-250")
    if not edges then edges = D.generate(n, o.DEGREE or (n <= 6 and n - 1 or 4), rng) end
    for _, e in ipairs(edges) do
        assert(e.a >= 1 and e.a <= n and e.b >= 1 and e.b <= n, "topology names a node beyond N")
        e.delay_ms = e.delay_ms or (o.DELAY > 0 and o.DELAY or nil)
        e.loss = e.loss or (o.LOSS > 0 and o.LOSS or nil)
    end
    local faults = D.parse_faults(o.FAULTS)
    local needs_loss = false
    local needs_delay = false
    for _, e in ipairs(edges) do
        needs_loss = needs_loss or (e.loss or 0) > 0
        needs_delay = needs_delay or (e.delay_ms or 0) > 0
    end
    for _, f in ipairs(faults) do
        needs_loss = needs_loss or f.action == "loss"
        needs_delay = needs_delay or f.action == "delay"
    end
    local NS
    if needs_loss then
        NS = require("netns")
        local ok, why = NS.available()
        if not ok then
            log("packet loss needs network namespaces and nftables: %s. Run as root with `ip` and "
                .. "`nft` (apt-get install nftables), or drop LOSS/loss faults.", why)
            return nil, "loss unavailable: " .. why
        end
        assert(not needs_delay, "latency (delay proxy on loopback) and loss (namespaces) cannot be "
            .. "combined in one run")
    end

    local run = o.RUN or (os.date("%Y%m%d-%H%M%S") .. "-s" .. seed)
    local run_dir = o.DIR .. "/" .. run
    os.execute("mkdir -p '" .. run_dir .. "'")
    run_dir = H.sh("cd '" .. run_dir .. "' && pwd")
    local block = string.format("127.%d.%d", 200 + (seed % 50), 1 + (uv.os_getpid() % 250))
    local net = H.net({ dir = run_dir, block = block })
    local experiments = split(o.EXPERIMENTS, ",")
    local keys = K.keys(n)
    local genesis = K.now_ms()
    local common = {}
    for k, v in pairs(D.PROFILE) do common[k] = v end
    common.block_interval = o.BLOCK_INTERVAL
    common.genesis_time = genesis
    common.masternodes = K.ids(keys)
    common.policy_dir = policy_dir(run_dir, experiments)
    common.features = experiments
    for _, f in ipairs(split(o.FEATURES, ",")) do table.insert(common.features, f) end
    local nodes = {}
    for i = 1, n do
        local cfg = {}
        for k, v in pairs(common) do cfg[k] = v end
        if NS then
            cfg.ip = NS.ip(i)
            cfg.listen = NS.ip(i) .. ":24100" -- each namespace has its own ports
        end
        local node = K.node(net, "n" .. i, cfg, keys[i])
        node.cfg.trace_file = node.dir .. "/trace.jsonl"
        nodes[i] = node
    end

    -- links: a dials b, through the delay proxy when the link has a delay
    local px, links = nil, {}
    local pids = {}
    if needs_delay then
        px = require("delayproxy").start()
        pids[#pids + 1] = px.pid
    end
    for _, e in ipairs(edges) do
        local a, b = nodes[e.a], nodes[e.b]
        local addr = b:addr()
        if px then
            local id = a.name .. "-" .. b.name
            addr = px:link(id, { listen = a.ip, target = b:addr(), src = a.ip, delay_ms = e.delay_ms or 0 })
            links[id] = true
            links[b.name .. "-" .. a.name] = id
        end
        a.cfg.persistent_peers = a.cfg.persistent_peers or {}
        table.insert(a.cfg.persistent_peers, addr)
    end
    local ns_state
    if NS then
        ns_state = NS.setup(run, n)
        for i, node in ipairs(nodes) do node.prefix = NS.prefix(ns_state, i) end
        for _, e in ipairs(edges) do
            if (e.loss or 0) > 0 then NS.loss(ns_state, e.a, e.b, e.loss) end
        end
    end

    local version = H.sh(H.BIN .. " --version 2>&1")
    local manifest = {
        run = run, started = os.date("!%Y-%m-%dT%H:%M:%SZ"), seed = seed, n = n,
        duration_s = o.DURATION, build = { version = version, git = git_rev(), binary = H.BIN },
        config = common, block_interval = o.BLOCK_INTERVAL, tx_rate = o.TX_RATE,
        tx_size = o.TX_SIZE, experiments = experiments,
        topology = { source = o.TOPOLOGY or ("generated, degree " .. (o.DEGREE or (n <= 6 and n - 1 or 4))),
            edges = {} },
        faults = faults, netns = NS and true or false, delay_proxy = px and true or false,
        nodes = {},
    }
    for _, e in ipairs(edges) do
        manifest.topology.edges[#manifest.topology.edges + 1] = { from = "n" .. e.a, to = "n" .. e.b,
            delay_ms = e.delay_ms, loss_pct = e.loss }
    end
    for i, node in ipairs(nodes) do
        manifest.nodes[i] = { name = node.name, id = keys[i].id, listen = node.cfg.listen,
            dir = node.dir, log = node.log_path, trace = node.cfg.trace_file }
    end
    H.write_file(run_dir .. "/manifest.json", json.encode(manifest, { indent = true }) .. "\n")

    -- stop on Ctrl-C / SIGTERM: the loop below notices and cleans up
    local stop_reason
    local sigs = {}
    for _, name in ipairs({ "sigint", "sigterm", "sighup" }) do
        local s = uv.new_signal()
        s:start(name, function() stop_reason = stop_reason or name end)
        sigs[#sigs + 1] = s
    end

    local function write_pids()
        local list = {}
        for _, p in ipairs(pids) do list[#list + 1] = tostring(p) end
        for _, node in ipairs(nodes) do if node:running() then list[#list + 1] = tostring(node.pid) end end
        H.write_file(run_dir .. "/pids", table.concat(list, "\n") .. "\n")
    end

    local results
    local ok, err = xpcall(function()
        log("run %s: %d nodes, seed %d, %d links%s, block interval %g s, %g tx/s%s", run, n, seed,
            #edges, px and " (through the delay proxy)" or NS and " (in network namespaces)" or "",
            o.BLOCK_INTERVAL, o.TX_RATE,
            #experiments > 0 and (", experiments: " .. table.concat(experiments, ", ")) or "")
        log("run dir   %s  (manifest.json, results.json, pids)", run_dir)
        log("logs      %s/nN/node.log   e.g. tail -f %s/n1/node.log", run_dir, run_dir)
        log("control   build/timenetctl -d %s/n1/data status   (peers, chain, mempool, ...)", run_dir)
        log("traces    %s/nN/trace.jsonl", run_dir)
        local t0 = H.now()
        for _, node in ipairs(nodes) do node:start({ wait = false }) end
        write_pids()
        for _, node in ipairs(nodes) do
            H.wait(function()
                if node.exit_code then
                    error(node.name .. " exited with " .. node.exit_code .. ": see " .. node.log_path)
                end
                return node:ctl_try({ cmd = "status" })
            end, 20, node.name .. " to answer on its control socket")
        end
        log("%d nodes up in %.1f s; stop with Ctrl-C%s", n, H.now() - t0,
            o.DURATION > 0 and string.format(" (or wait %g s)", o.DURATION) or "")
        local stream = make_streamer(nodes, o.QUIET)
        local key = K.keys(1)[1]
        local nonce, tx_due, submitted = 0, 0, {}
        local fi = 1
        local blocked = {}
        local rss_max = {}
        local next_status = 5
        local started = H.now()
        local function elapsed() return H.now() - started end
        local function node_by(name)
            for _, x in ipairs(nodes) do if x.name == name then return x end end
            error("fault names unknown node " .. tostring(name), 0)
        end
        while not stop_reason and (o.DURATION <= 0 or elapsed() < o.DURATION) do
            H.sleep(0.1)
            stream()
            -- transactions
            tx_due = tx_due + o.TX_RATE * 0.1
            while tx_due >= 1 do
                tx_due = tx_due - 1
                nonce = nonce + 1
                local target = nodes[rng(1, n)]
                if target:running() then
                    local raw = K.tx(key, nonce, string.rep(string.char(97 + nonce % 26), o.TX_SIZE))
                    local r = target:ctl_try({ cmd = "tx_submit", hex = T.hex(raw) })
                    if r and r.ok then submitted[#submitted + 1] = r.id end
                end
            end
            -- faults
            while faults[fi] and faults[fi].at <= elapsed() do
                local f = faults[fi]
                fi = fi + 1
                local w = split(f.args, " ")
                log("fault at %gs: %s %s", f.at, f.action, f.args)
                if f.action == "kill" then
                    node_by(w[1]):kill()
                elseif f.action == "stop" then
                    node_by(w[1]):stop()
                elseif f.action == "restart" then
                    local x = node_by(w[1])
                    if x:running() then x:stop() end
                    x:start({ wait = false })
                    write_pids()
                elseif f.action == "partition" then
                    local sides = split(f.args, "|")
                    local A, B = split(sides[1], ","), split(sides[2] or "", ",")
                    if #B == 0 then -- "partition n1,n2": those against everyone else
                        local inA = {}
                        for _, x in ipairs(A) do inA[x] = true end
                        for _, x in ipairs(nodes) do if not inA[x.name] then B[#B + 1] = x.name end end
                    end
                    for _, an in ipairs(A) do
                        for _, bn in ipairs(B) do
                            local a, b = node_by(an), node_by(bn)
                            for _, pair in ipairs({ { a, b }, { b, a } }) do
                                if pair[1]:running() then
                                    pair[1]:ctl_try({ cmd = "block", addr = pair[2].ip })
                                    blocked[#blocked + 1] = pair
                                end
                            end
                        end
                    end
                elseif f.action == "heal" then
                    for _, pair in ipairs(blocked) do
                        if pair[1]:running() then pair[1]:ctl_try({ cmd = "unblock", addr = pair[2].ip }) end
                    end
                    blocked = {}
                elseif f.action == "delay" then
                    local id = links[w[1] .. "-" .. w[2]]
                    if id == nil then error("fault: no delayed link " .. w[1] .. "-" .. w[2], 0) end
                    px:delay(id == true and (w[1] .. "-" .. w[2]) or id, tonumber(w[3]))
                elseif f.action == "loss" then
                    local a, b = w[1]:gsub("^n", ""), w[2]:gsub("^n", "")
                    NS.loss(ns_state, tonumber(a), tonumber(b), tonumber(w[3]))
                else
                    error("unknown fault action " .. f.action, 0)
                end
            end
            if elapsed() >= next_status then
                next_status = next_status + 5
                local hmin, hmax, pmin, pmax, up = math.huge, 0, math.huge, 0, 0
                for _, x in ipairs(nodes) do
                    local st = x:running() and x:ctl_try({ cmd = "status" })
                    if st then
                        up = up + 1
                        hmin, hmax = math.min(hmin, st.height or 0), math.max(hmax, st.height or 0)
                        local p = st.peers and (st.peers.connected or st.peers.total) or 0
                        if type(p) ~= "number" then p = 0 end
                        pmin, pmax = math.min(pmin, p), math.max(pmax, p)
                        local kb = x:rss_kb()
                        if kb then rss_max[x.name] = math.max(rss_max[x.name] or 0, kb) end
                    end
                end
                log("t=%ds: %d/%d nodes up, height %s-%s, peers %s-%s, %d txs submitted",
                    math.floor(elapsed()), up, n, up > 0 and hmin or "-", hmax, up > 0 and pmin or "-", pmax,
                    #submitted)
            end
        end
        stream()
        log("stopping (%s) after %.0f s", stop_reason or "duration reached", elapsed())
        results = D.collect(nodes, run_dir, manifest, submitted, rss_max, elapsed())
        if ns_state then
            results.packets_dropped = 0
            for i = 1, n do results.packets_dropped = results.packets_dropped + NS.dropped(ns_state, i) end
        end
    end, debug.traceback)
    -- whatever happened: every process we started goes
    for _, node in ipairs(nodes) do if node:running() then node:signal("sigterm") end end
    for _, node in ipairs(nodes) do pcall(node.stop, node, 5) end
    if px then px:stop() end
    if ns_state then NS.teardown(ns_state) end
    net:cleanup()
    for _, s in ipairs(sigs) do s:close() end
    H.write_file(run_dir .. "/pids", "")
    if not ok then
        log("demo failed: %s", tostring(err))
        return nil, err
    end
    results.stop_reason = stop_reason or "duration"
    if ns_state then results.netns_left = NS.leftovers(ns_state) end
    -- traces are complete once the nodes flushed them at shutdown
    local paths = {}
    for _, node in ipairs(nodes) do paths[#paths + 1] = node.cfg.trace_file end
    local names = {}
    for _, node in ipairs(nodes) do names[#names + 1] = node.name end
    results.propagation = TR.analyze(TR.load(paths), { nodes = names, settle_s = 2 })
    H.write_file(run_dir .. "/results.json", json.encode(results, { indent = true }) .. "\n")
    D.report(results, run_dir)
    return results
end

-- Facts gathered from the running nodes at the end: chain agreement, blocks per slot, RSS,
-- experiment output.
function D.collect(nodes, run_dir, manifest, submitted, rss_max, seconds)
    local r = { run = manifest.run, seed = manifest.seed, n = #nodes, seconds = seconds,
        run_dir = run_dir, txs_submitted = #submitted }
    -- chain: tips of the running nodes, and the produced blocks from every log
    local tips, heights, running = {}, {}, 0
    for _, x in ipairs(nodes) do
        local c = x:running() and x:ctl_try({ cmd = "chain" })
        if c and c.tip then
            running = running + 1
            tips[c.tip] = (tips[c.tip] or 0) + 1
            heights[#heights + 1] = c.height
        end
    end
    local best = 0
    for _, cnt in pairs(tips) do best = math.max(best, cnt) end
    local slots, produced, double = {}, 0, 0
    local first, last
    for _, x in ipairs(nodes) do
        for line in x:log():gmatch("[^\n]+") do
            local h, s = line:match("Produced block (%d+) for slot (%d+)")
            if s then
                s = tonumber(s)
                produced = produced + 1
                if slots[s] then double = double + 1 end
                slots[s] = tonumber(h)
                first = math.min(first or s, s)
                last = math.max(last or s, s)
            end
        end
    end
    local empty = 0
    for s = first or 1, last or 0 do if not slots[s] then empty = empty + 1 end end
    r.chain = { running = running, tips_agree = best, distinct_tips = 0, produced = produced,
        slots = first and (last - first + 1) or 0, empty_slots = empty, double_slots = double,
        height_min = math.huge, height_max = 0 }
    for _ in pairs(tips) do r.chain.distinct_tips = r.chain.distinct_tips + 1 end
    for _, h in ipairs(heights) do
        r.chain.height_min = math.min(r.chain.height_min, h)
        r.chain.height_max = math.max(r.chain.height_max, h)
    end
    if #heights == 0 then r.chain.height_min = 0 end
    -- connections at the end
    local conn = {}
    for _, x in ipairs(nodes) do
        local st = x:running() and x:ctl_try({ cmd = "peers" })
        conn[x.name] = st and #(st.peers or {}) or 0
    end
    r.peers = conn
    -- memory
    local rss, sum, mx, mn = {}, 0, 0, math.huge
    for _, x in ipairs(nodes) do
        local kb = x:rss_kb()
        if kb then rss_max[x.name] = math.max(rss_max[x.name] or 0, kb) end
        if rss_max[x.name] then
            rss[x.name] = rss_max[x.name]
            sum = sum + rss_max[x.name]
            mx, mn = math.max(mx, rss_max[x.name]), math.min(mn, rss_max[x.name])
        end
    end
    local cnt = 0
    for _ in pairs(rss) do cnt = cnt + 1 end
    r.rss_kb = { per_node = rss, max = mx, min = cnt > 0 and mn or 0, avg = cnt > 0 and sum / cnt or 0 }
    -- experiments: the last line each node logged with "Policy: NAME:"
    r.experiments = {}
    for _, e in ipairs(manifest.experiments) do
        local rows = {}
        for _, x in ipairs(nodes) do
            local lastline
            for line in x:log():gmatch("[^\n]+") do
                local msg = line:match("Policy: " .. e .. ": (.*)$")
                if msg then lastline = msg end
            end
            rows[x.name] = lastline
        end
        r.experiments[e] = rows
    end
    return r
end

function D.report(r, run_dir)
    local c = r.chain
    print("")
    print(string.format("== run %s: %d nodes, %.0f s, seed %d", r.run, r.n, r.seconds, r.seed))
    print(string.format("chain   height %d-%d on %d running nodes, %d of them on one tip (%d distinct "
        .. "tips)", c.height_min, c.height_max, c.running, c.tips_agree, c.distinct_tips))
    print(string.format("blocks  %d produced in %d slots: %d empty, %d slots with two blocks",
        c.produced, c.slots, c.empty_slots, c.double_slots))
    print(string.format("memory  RSS per node (max seen): min %.1f, avg %.1f, max %.1f MiB",
        r.rss_kb.min / 1024, r.rss_kb.avg / 1024, r.rss_kb.max / 1024))
    print(string.format("txs     %d submitted", r.txs_submitted))
    if r.packets_dropped then
        print(string.format("loss    %d packets dropped by nftables", r.packets_dropped))
    end
    print("propagation (from the traces; objects born in the last 2 s left out):")
    print(TR.format(r.propagation))
    for e, rows in pairs(r.experiments) do
        print("experiment " .. e .. " (last line of each node):")
        local names = {}
        for name in pairs(rows) do names[#names + 1] = name end
        table.sort(names, function(a, b) return tonumber(a:sub(2)) < tonumber(b:sub(2)) end)
        for _, name in ipairs(names) do print("  " .. name .. ": " .. rows[name]) end
    end
    print("results: " .. run_dir .. "/results.json")
end

-- Two or more runs' propagation of one type side by side: runs = { label = results, ... }.
function D.side_by_side(runs, type_name)
    local labels = {}
    for label in pairs(runs) do labels[#labels + 1] = label end
    table.sort(labels)
    local lines = { string.format("%-20s %7s %9s %8s %8s %8s %10s", type_name, "objects", "delivery",
        "p50 ms", "p90 ms", "p99 ms", "duplicates") }
    for _, label in ipairs(labels) do
        local x = runs[label].propagation[type_name]
        if x then
            lines[#lines + 1] = string.format("%-20s %7d %8.1f%% %8.1f %8.1f %8.1f %10d", label, x.objects,
                (x.delivery or 0) * 100, x.latency_ms.p50 or 0, x.latency_ms.p90 or 0, x.latency_ms.p99 or 0,
                x.duplicates)
        end
    end
    return table.concat(lines, "\n")
end

if (...) == "demo" then return D end

-- lua5.4 tests/lib/demo.lua compare TYPE LABEL=results.json LABEL=results.json ...
if (...) == "compare" then
    local args = { ... }
    local runs = {}
    for i = 3, #args do
        local label, path = args[i]:match("^(.-)=(.+)$")
        runs[label] = assert(json.decode(assert(H.read_file(path), "cannot read " .. path)))
    end
    print(D.side_by_side(runs, args[2]))
    os.exit(0)
end

-- lua5.4 tests/lib/demo.lua KEY=VALUE ... (the module name is passed as `...` when required)
local args = { ... }
local o = D.parse_args(args)
local ok, res, err = pcall(D.run, o)
if not ok then
    io.stderr:write("demo: " .. tostring(res) .. "\n")
    os.exit(1)
end
if not res then
    io.stderr:write("demo: " .. tostring(err) .. "\n")
    os.exit(1)
end
os.exit(0)
