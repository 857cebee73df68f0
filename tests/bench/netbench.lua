-- Network benches (DESIGN.md "Benchmarks", issue 10): real timenetd processes started through
-- the test harness (tests/lib/harness.lua), loaded and observed by build/bench-netload
-- (tests/bench/netload.c: one observer session per node, publication through each node's
-- control socket or, for the unsigned path, pushed by the observer).
--
--   lua5.4 tests/bench/netbench.lua load_20x1000 | masternodes_100 | net_n20_signed |
--                                    net_n20_unsigned
--
-- Prints one JSON object {"params", "figures", "floors"} on stdout (tests/bench/run.sh adds the
-- name and the machine), progress on stderr. Environment knobs (for quick runs; the defaults
-- are the documented bench): NB_NODES, NB_RATE, NB_DURATION, NB_SEED.
package.path = "tests/lib/?.lua;lua/?.lua;" .. package.path
package.cpath = (os.getenv("BUILD") or "build") .. "/?.so;" .. package.cpath
local H = require("harness")
local K = require("chainkit")
local json = require("dkjson")

local TOOL = H.BUILD .. "/bench-netload"
local which = arg[1]

local function log(fmt, ...)
    io.stderr:write(string.format("netbench: " .. fmt .. "\n", ...))
end

local function env_num(name, default)
    return tonumber(os.getenv(name) or "") or default
end

local function loadavg()
    local s = H.read_file("/proc/loadavg") or ""
    return s:match("^(%S+ %S+ %S+)") or "?"
end

-- Resident set of a process in KiB (VmRSS).
local function rss_kb(node)
    if not node:running() then return nil end
    local s = H.read_file("/proc/" .. node.pid .. "/status") or ""
    return tonumber(s:match("VmRSS:%s*(%d+)"))
end

local function round(x, digits)
    local m = 10 ^ (digits or 0)
    return math.floor(x * m + 0.5) / m
end

local function stats(list)
    local s = {}
    for i, v in ipairs(list) do s[i] = v end
    table.sort(s)
    local sum = 0
    for _, v in ipairs(s) do sum = sum + v end
    return { min = s[1], max = s[#s], median = s[(#s + 1) // 2], mean = #s > 0 and sum / #s or 0 }
end

-- The production-like profile of bench nodes: real heartbeat and flush intervals (not the
-- specs' sub-second ones), a topology fixed by the bench (min_peers 0: nothing dialed beyond
-- it), the shipped policies.
local PROFILE = {
    heartbeat_interval = 10,
    pong_deadline = 5,
    handshake_timeout = 10,
    connection_timeout = 10,
    reconnect_delay = 1,
    reconnect_cooldown = 30,
    store_flush_interval = 0.25,
    sync_interval = 10,
    sync_timeout = 10,
    relay_request_timeout = 2,
    min_peers = 0,
    status_interval = 300,
    log_level = "info",
}

-- Each node dials `degree` others picked at random (seeded; Lua 5.4's generator is
-- deterministic for a seed), never one that already dials it, so every link is one session.
local function random_dials(n, degree, seed)
    math.randomseed(seed)
    local dials, linked = {}, {}
    for i = 1, n do linked[i] = {} end
    for i = 1, n do
        local cand = {}
        for j = 1, n do
            if j ~= i and not linked[i][j] then cand[#cand + 1] = j end
        end
        dials[i] = {}
        for _ = 1, math.min(degree, #cand) do
            local j = table.remove(cand, math.random(#cand))
            dials[i][#dials[i] + 1] = j
            linked[i][j], linked[j][i] = true, true
        end
    end
    local deg = {}
    for i = 1, n do
        local d = 0
        for _ in pairs(linked[i]) do d = d + 1 end
        deg[i] = d
    end
    return dials, deg
end

-- Declares, wires and starts n nodes; cfg is PROFILE plus `extra`; keys[i] (optional) become
-- node keys. Waits until every node has its expected number of sessions.
-- NB_CFG="key=value,..." overrides config keys of every node (numbers only; for experiments).
local function env_cfg()
    local out = {}
    for k, v in (os.getenv("NB_CFG") or ""):gmatch("([%w_]+)=([^,]+)") do out[k] = tonumber(v) or v end
    return out
end

local function start_network(net, n, extra, dials, deg, keys, timeout)
    local nodes = {}
    for i = 1, n do
        local c = {}
        for k, v in pairs(PROFILE) do c[k] = v end
        for k, v in pairs(extra or {}) do c[k] = v end
        for k, v in pairs(env_cfg()) do c[k] = v end
        nodes[i] = net:node(string.format("n%d", i), c)
        if keys then K.write_key(nodes[i], keys[i]) end
    end
    for i = 1, n do
        local peers = {}
        for _, j in ipairs(dials[i]) do peers[#peers + 1] = nodes[j]:addr() end
        nodes[i].cfg.persistent_peers = peers
    end
    local t0 = H.now()
    for i, node in ipairs(nodes) do
        node:start({ timeout = 30 })
        if i % 20 == 0 then log("started %d of %d nodes", i, n) end
    end
    H.wait(function()
        local short = 0
        for i, node in ipairs(nodes) do
            if node:status().peers.connected < deg[i] then short = short + 1 end
        end
        return short == 0
    end, timeout or 60, "every node connected to its configured peers")
    log("%d nodes up and connected in %.1f s", n, H.now() - t0)
    return nodes
end

-- Runs the load tool over `nodes`; returns its JSON result.
local function netload(net, nodes, a)
    local list = net.dir .. "/netload.nodes"
    local lines = {}
    for _, node in ipairs(nodes) do
        lines[#lines + 1] = string.format("%s %s %s/control.sock %d", node.name, node:addr(),
            node.cfg.data_dir, node.pid or 0)
    end
    H.write_file(list, table.concat(lines, "\n") .. "\n")
    local cmd = string.format("%s --nodes %s --src %s.250 --mode %s --rate %s --duration %s "
        .. "--drain %s --seed %d%s", TOOL, list, net.block, a.mode, a.rate, a.duration, a.drain,
        a.seed or 1, a.type and (" --type " .. a.type) or "")
    log("%s", cmd)
    local p = assert(io.popen(cmd, "r"))
    local out = p:read("a")
    local ok = p:close()
    local r = json.decode(out or "")
    if not ok or type(r) ~= "table" then error("netload failed: " .. tostring(out), 0) end
    return r
end

local function rss_summary(nodes)
    local mb = {}
    for _, node in ipairs(nodes) do
        local kb = rss_kb(node)
        if kb then mb[#mb + 1] = kb / 1024 end
    end
    return stats(mb)
end

-- A policy directory: the shipped policies plus the named example experiments.
local function policy_dir(net, experiments)
    local dir = net.dir .. "/policies"
    os.execute(string.format("mkdir -p '%s/lib' && cp policies/*.lua '%s/' && "
        .. "cp policies/lib/*.lua '%s/lib/'", dir, dir, dir))
    for _, e in ipairs(experiments) do
        assert(os.execute(string.format("cp 'examples/experiments/%s.lua' '%s/'", e, dir)))
    end
    return dir
end

-- H.with_net, but a failure prints the tails of a few logs, not every log of 100 nodes.
local function with_net(body)
    local net = H.net()
    local ok, err = xpcall(body, debug.traceback, net)
    if not ok then
        for i = 1, math.min(3, #net.nodes) do
            local text = net.nodes[i]:log()
            io.stderr:write("----- last lines of " .. net.nodes[i].name .. " -----\n"
                .. text:sub(math.max(1, #text - 3000)) .. "\n")
        end
    end
    net:cleanup(false)
    if not ok then error(err, 0) end
end

-- Counters summed over the nodes and the worst loop lag: why a run missed, in its params.
local DIAG_SUM = { "tn_relay_requests_dropped_total", "tn_relay_requests_retried_total",
    'tn_relay_tx_total{outcome="duplicate"}', 'tn_relay_tx_total{outcome="mempool_full"}',
    'tn_relay_tx_total{outcome="invalid"}', "tn_reorgs_total", "tn_sync_failovers_total",
    "tn_sessions_closed_total", "tn_pongs_missed_total", "tn_bans_total",
    'tn_relay_blocks_total{outcome="accepted"}', 'tn_relay_blocks_total{outcome="orphan"}',
    "tn_blocks_produced_total", "tn_production_skipped_total" }
local function diagnostics(nodes)
    local d, lag, lag_sum, lag_n = {}, {}, 0, 0
    for _, node in ipairs(nodes) do
        local ok, r = pcall(node.ctl, node, { cmd = "metrics", format = "prometheus" })
        local text = ok and r.text or ""
        for line in text:gmatch("[^\n]+") do
            local name, v = line:match("^(%S+) (%S+)$")
            v = tonumber(v)
            if name and v then
                for _, k in ipairs(DIAG_SUM) do
                    if k == name then d[k] = (d[k] or 0) + v end
                end
                -- anything a limit dropped or closed (tn_ratelimit.c, tn_guard.c)
                if v > 0 and (name:match("^tn_rate_dropped_total")
                    or name:match("^tn_guard_closed_total")) then
                    d[name] = (d[name] or 0) + v
                end
                local le = name:match('^tn_loop_lag_seconds_bucket{le="([^"]+)"}')
                if le then lag[le] = (lag[le] or 0) + v end
                if name == "tn_loop_lag_seconds_sum" then lag_sum = lag_sum + v end
                if name == "tn_loop_lag_seconds_count" then lag_n = lag_n + v end
            end
        end
    end
    -- how late the nodes' 0.5 s timer fired, all nodes together: cumulative counts per bound
    local les = {}
    for le in pairs(lag) do les[#les + 1] = le end
    table.sort(les, function(x, y) return (tonumber(x) or math.huge) < (tonumber(y) or math.huge) end)
    local parts = {}
    for _, le in ipairs(les) do parts[#parts + 1] = "<=" .. le .. ":" .. math.floor(lag[le]) end
    d.loop_lag_cumulative = table.concat(parts, " ")
    d.loop_lag_mean_ms = lag_n > 0 and round(lag_sum / lag_n * 1000, 2) or nil
    return d
end

local EMPTY = setmetatable({}, { __jsontype = "object" })

local function base_params(extra)
    local p = { loadavg_before = loadavg(), profile = PROFILE, observer =
        "one extra inbound session per node (build/bench-netload): it receives invs and "
        .. "answers pings; it adds one peer's worth of announcements to every node" }
    for k, v in pairs(extra) do p[k] = v end
    return p
end

---------------------------------------------------------------------------- benches

local B = {}

-- 1000 signed tx/s for 60 s into 20 relay nodes (each dials 8 random others).
function B.load_20x1000()
    local n = env_num("NB_NODES", 20)
    local rate = env_num("NB_RATE", 1000)
    local duration = env_num("NB_DURATION", 60)
    local seed = env_num("NB_SEED", 20)
    local result
    with_net(function(net)
        local dials, deg = random_dials(n, 8, seed)
        local nodes = start_network(net, n, { max_peers = 60 }, dials, deg)
        H.sleep(2)
        local la = loadavg()
        local r = netload(net, nodes, { mode = "signed", rate = rate, duration = duration,
            drain = 30, seed = seed })
        local rss = rss_summary(nodes)
        local diag = diagnostics(nodes)
        local rejected = 0
        for _, node in ipairs(nodes) do
            rejected = rejected + node:metric('tn_relay_tx_total{outcome="invalid"}')
                + node:metric('tn_relay_tx_total{outcome="mempool_full"}')
        end
        result = {
            params = base_params({ nodes = n, dials_per_node = 8, seed = seed, rate_tx_per_s = rate,
                duration_s = duration, tx_bytes = 250, loadavg_at_start = la, links = (function()
                    local l = 0
                    for _, d in ipairs(deg) do l = l + d end
                    return l // 2
                end)(),
                publication = "tx_submit on a random node's control socket (seeded)",
                time_to_all = "tx_submit written -> the last of the 20 nodes announces it to the "
                    .. "observer",
                about_cpu_us_per_tx = "utime+stime of all node processes during the run / transactions "
                    .. "published (each is verified and stored by all nodes)",
                about_cpu_us_per_node_tx = "the same per (transaction, node) delivery",
                publish_s = r.publish_s, achieved_rate = r.achieved_rate, acks = r.acks,
                naks = r.naks, first_nak = r.first_nak, invalid_or_full = rejected,
                tool_cpu_s = r.tool_cpu_s, node_cpu_s = r.node_cpu_s,
                node_cores_busy = round(r.node_cpu_s / r.wall_s, 3),
                latency_p50_ms = r.lat_p50_ms, latency_p99_ms = r.lat_p99_ms,
                entry_latency_p50_ms = r.entry_p50_ms, entry_latency_p99_ms = r.entry_p99_ms,
                time_to_all_max_ms = r.tta_max_ms, rss_max_mb = round(rss.max, 1),
                goal = "delivery 1, time_to_all_p99_ms < 1000", diagnostics = diag }),
            figures = {
                delivery = r.delivery,
                time_to_all_p50_ms = r.tta_p50_ms,
                time_to_all_p99_ms = r.tta_p99_ms,
                cpu_us_per_tx = round(r.node_cpu_s * 1e6 / math.max(1, r.published), 1),
                cpu_us_per_node_tx = round(r.node_cpu_s * 1e6 / math.max(1, r.published * n), 2),
                rss_mb = round(rss.mean, 1),
            },
            floors = EMPTY,
        }
    end)
    return result
end

-- 100+ masternodes in a full mesh, blocks every second, 200 signed tx/s for 60 s.
function B.masternodes_100()
    local n = env_num("NB_NODES", 100)
    local rate = env_num("NB_RATE", 200)
    local duration = env_num("NB_DURATION", 60)
    local block_interval = env_num("NB_BLOCK_INTERVAL", 1)
    local result
    with_net(function(net)
        local keys = K.keys(n)
        local dials, deg = {}, {}
        for i = 1, n do
            dials[i] = {}
            for j = 1, i - 1 do dials[i][#dials[i] + 1] = j end
            deg[i] = n - 1
        end
        -- every node a masternode; a small memory profile (the run's 12,000 txs and blocks
        -- fit these bounds with room); slots for the whole mesh plus the observer
        local extra = { masternodes = K.ids(keys), block_interval = block_interval,
            max_peers = n + 20, max_inbound_pending = 256, genesis_time = K.now_ms() - 1000,
            dedup_capacity = 200000, mempool_max_txs = 50000, mempool_max_bytes = 33554432,
            policy_memory_max = 8388608, sync_interval = 5, sync_timeout = 5,
            -- 99 peers each: at most 10 tx inv messages a second to each (990 per node), where
            -- the default (0.005 s) allows 200; a real masternode has its own machine, these 100
            -- share 2 cores
            relay_inv_interval = 0.1 }
        local nodes = start_network(net, n, extra, dials, deg, keys, 300)
        H.sleep(3)
        local slot_ms = math.floor(block_interval * 1000 + 0.5)
        local slot0 = K.now_ms() // slot_ms
        local la = loadavg()
        local closed0 = 0
        for _, node in ipairs(nodes) do closed0 = closed0 + node:metric("tn_sessions_closed_total") end
        local r = netload(net, nodes, { mode = "signed", rate = rate, duration = duration,
            drain = 30, seed = 100 })
        local slot1 = K.now_ms() // slot_ms
        -- a miss: the same network at half the rate, to say where the goal holds on this machine
        local half
        if r.delivery < 1 or r.tta_p99_ms >= 1000 then
            H.sleep(5)
            local h = netload(net, nodes, { mode = "signed", rate = rate / 2, duration = duration,
                drain = 30, seed = 101 })
            half = { rate_tx_per_s = rate / 2, delivery = h.delivery,
                time_to_all_p50_ms = h.tta_p50_ms, time_to_all_p99_ms = h.tta_p99_ms,
                node_cores_busy = round(h.node_cpu_s / h.wall_s, 3) }
        end
        -- chains: distinct block ids at the lowest tip height among the nodes (every node has
        -- a block there; two ids = a fork), after a few slots without load
        H.sleep(3 * block_interval)
        local tips, lowest = {}, math.huge
        for i, node in ipairs(nodes) do
            tips[i] = K.chain(node)
            lowest = math.min(lowest, tips[i].height)
        end
        local ids, chains, highest = {}, 0, 0
        for _, c in ipairs(tips) do
            highest = math.max(highest, c.height)
            for _, b in ipairs(c.recent) do
                if b.height == lowest and not ids[b.id] then
                    ids[b.id] = true
                    chains = chains + 1
                end
            end
        end
        -- blocks on the main chain for the slots of the loaded window, from one node's store
        local chain = K.main_chain(nodes[1], 20)
        local in_window = 0
        for _, b in ipairs(chain) do
            if b.slot >= slot0 and b.slot < slot1 then in_window = in_window + 1 end
        end
        local rss = rss_summary(nodes)
        local diag = diagnostics(nodes)
        local closed = -closed0
        for _, node in ipairs(nodes) do
            closed = closed + node:metric("tn_sessions_closed_total")
        end
        result = {
            params = base_params({ nodes = n, masternodes = n, topology = "full mesh (node i dials "
                .. "nodes 1..i-1)", block_interval_s = block_interval, rate_tx_per_s = rate,
                duration_s = duration, tx_bytes = 250, loadavg_at_start = la,
                relay_inv_interval_s = extra.relay_inv_interval,
                publish_s = r.publish_s, acks = r.acks, naks = r.naks, first_nak = r.first_nak,
                latency_p50_ms = r.lat_p50_ms, time_to_all_p50_ms = r.tta_p50_ms,
                entry_latency_p50_ms = r.entry_p50_ms, entry_latency_p99_ms = r.entry_p99_ms,
                deliveries_seen_first_in_a_block = r.via_block,
                time_to_all_max_ms = r.tta_max_ms, node_cpu_s = r.node_cpu_s,
                node_cores_busy = round(r.node_cpu_s / r.wall_s, 3), tool_cpu_s = r.tool_cpu_s,
                slots_in_window = slot1 - slot0, blocks_in_window = in_window,
                height_lowest = lowest, height_highest = highest,
                sessions_closed_during_run = closed, rss_max_mb = round(rss.max, 1),
                rss_min_mb = round(rss.min, 1),
                chains = "distinct block ids at the lowest tip height of the 100 nodes, after 3 "
                    .. "idle slots",
                time_to_all = "tx_submit written -> the last node announces the tx (or a block "
                    .. "holding it) to the observer",
                goal = "delivery 1, time_to_all_p99_ms < 1000, chains 1", diagnostics = diag,
                at_half_rate = half }),
            figures = {
                delivery = r.delivery,
                time_to_all_p99_ms = r.tta_p99_ms,
                chains = chains,
                blocks_on_schedule = round(in_window / math.max(1, slot1 - slot0), 3),
                rss_mb = round(rss.mean, 1),
            },
            floors = EMPTY,
        }
    end)
    return result
end

-- The highest publication rate at which every message reaches every node with p99 < 100 ms:
-- doubling from `start` until a step fails, then bisection, each step `step_s` seconds.
local function search(net, nodes, mode, start, step_s, type_id, budget_s)
    local steps, lo, hi = {}, nil, nil
    local t_begin = H.now()
    local function try(rate)
        rate = math.floor(rate)
        local r = netload(net, nodes, { mode = mode, rate = rate, duration = step_s, drain = 5,
            seed = #steps + 1, type = type_id })
        local ok = r.delivery >= 1 and r.lat_p99_ms >= 0 and r.lat_p99_ms < 100
            and r.publish_failures == 0 and (r.achieved_rate >= 0.97 * rate)
        steps[#steps + 1] = { rate = rate, ok = ok, delivery = r.delivery, p50_ms = r.lat_p50_ms,
            p90_ms = r.lat_p90_ms, p99_ms = r.lat_p99_ms, tta_p99_ms = r.tta_p99_ms,
            achieved = r.achieved_rate, node_cpu_s = r.node_cpu_s, wall_s = r.wall_s, r = r }
        log("step %d: %d msg/s: delivery %.5f, p50 %.1f ms, p99 %.1f ms -> %s", #steps, rate,
            r.delivery, r.lat_p50_ms, r.lat_p99_ms, ok and "pass" or "fail")
        H.sleep(2)
        return ok
    end
    -- doubling up from `start` while it passes, or halving down while it fails; then
    -- bisection between the highest pass and the lowest failure
    local rate = start
    while H.now() - t_begin < budget_s and rate <= 64000 and rate >= 50 do
        if try(rate) then
            lo = rate
            if hi then break end
            rate = rate * 2
        else
            hi = rate
            if lo then break end
            rate = math.floor(rate / 2)
        end
    end
    while lo and hi and hi / lo > 1.08 and H.now() - t_begin < budget_s do
        local mid = math.floor((lo + hi) / 2)
        if try(mid) then lo = mid else hi = mid end
    end
    return lo, hi, steps
end

local function net_n20(mode)
    local n = env_num("NB_NODES", 20)
    local seed = env_num("NB_SEED", 20)
    local step_s = env_num("NB_DURATION", 8)
    local result
    with_net(function(net)
        local dials, deg = random_dials(n, 8, seed)
        local extra = { max_peers = 60, dedup_capacity = 2000000 }
        if mode == "flood" then
            extra.policy_dir = policy_dir(net, { "flood" })
            extra.features = { "flood" }
            -- the default budget of Lua-registered types (rate_custom, 100 messages/s per peer)
            -- is for experiments' control traffic: a flood relays every message on every link
            extra.rate_custom = { 1000000, 10 }
        end
        local nodes = start_network(net, n, extra, dials, deg)
        H.sleep(2)
        -- warm-up (not counted): first store writes, table growth, the observer's sessions
        netload(net, nodes, { mode = mode, rate = 200, duration = 3, drain = 5, seed = 99,
            type = mode == "flood" and "0x8200" or nil })
        local la = loadavg()
        local lo, hi, steps = search(net, nodes, mode, mode == "flood" and 1000 or 500, step_s,
            mode == "flood" and "0x8200" or nil, env_num("NB_BUDGET", 420))
        local best
        for _, s in ipairs(steps) do
            if s.ok and (not best or s.rate > best.rate) then best = s end
        end
        local rss = rss_summary(nodes)
        local list = {}
        for i, s in ipairs(steps) do
            list[i] = string.format("%d/s %s (delivery %.5f, p99 %.1f ms)", s.rate,
                s.ok and "pass" or "fail", s.delivery, s.p99_ms)
        end
        local links = 0
        for _, d in ipairs(deg) do links = links + d end
        result = {
            params = base_params({ nodes = n, dials_per_node = 8, links = links // 2, seed = seed,
                msg_bytes = 250, step_s = step_s, loadavg_at_start = la,
                rate_custom = extra.rate_custom and "1000000 per 10 s (default 1000 per 10 s drops "
                    .. "a flood beyond 100 msg/s on every link)" or nil,
                diagnostics = diagnostics(nodes),
                path = mode == "flood"
                    and "unsigned: Lua-defined raw type 0x8200 flooded with tn.broadcast "
                        .. "(examples/experiments/flood.lua), core dedup, pushed by the observer "
                        .. "to a random entry node; latency counts the 19 other nodes"
                    or "signed: 250 B transactions, tx_submit at a random node, announce-then-fetch "
                        .. "relay with Ed25519 verification at every node",
                criterion = "delivery 1 and per-node latency p99 < 100 ms (publication -> "
                    .. "the node's copy reaches the observer)",
                search = "doubling, then bisection to 8 %; steps: " .. table.concat(list, "; "),
                first_failing_rate = hi, time_to_all_p99_ms = best and best.tta_p99_ms,
                node_cores_busy = best and round(best.node_cpu_s / best.wall_s, 3),
                rss_max_mb = round(rss.max, 1),
                goal = mode == "flood" and ">= 4000 msg/s" or ">= 2000 msg/s" }),
            figures = {
                max_rate = lo or 0,
                p50_ms = best and best.p50_ms or -1,
                p90_ms = best and best.p90_ms or -1,
                p99_ms = best and best.p99_ms or -1,
                rss_mb = round(rss.mean, 1),
            },
            floors = EMPTY,
        }
    end)
    return result
end

-- The node's "Max open files" soft and hard limits (/proc/PID/limits).
local function nofile(node)
    local s = H.read_file("/proc/" .. node.pid .. "/limits") or ""
    local soft, hard = s:match("Max open files%s+(%S+)%s+(%S+)")
    return tonumber(soft) or soft, tonumber(hard) or hard
end

local function run_idle(node, net, a)
    local cmd = string.format("%s/bench-idle --target %s --pid %d --conns %d --procs %d "
        .. "--src-base %s --inflight %d --hold %d --deadline %d --ctl %s/control.sock%s", H.BUILD,
        node:addr(), node.pid, a.conns, a.procs, net.block, a.inflight or 64, a.hold,
        a.deadline or 300, node.cfg.data_dir,
        a.active and string.format(" --active --tx-rate %d", a.tx_rate) or "")
    log("%s", cmd)
    local p = assert(io.popen(cmd, "r"))
    local out = p:read("a")
    p:close()
    local r = json.decode(out or "")
    if type(r) ~= "table" then error("bench-idle failed: " .. tostring(out), 0) end
    return r
end

-- 10,000 idle authenticated sessions to one node, then 128 active ones (a fresh node).
function B.idle_conns()
    local conns = env_num("NB_CONNS", 10000)
    local procs = env_num("NB_PROCS", 4)
    local result
    with_net(function(net)
        local wl = {}
        for i = 0, procs - 1 do wl[#wl + 1] = string.format("%s.%d", net.block, 200 + i) end
        -- the bench config: slots and pending handshakes for everyone, the clients' IPs
        -- whitelisted (one connection per IP otherwise), production heartbeats
        local cfg = { max_peers = conns + 1000, max_inbound_pending = 1024, whitelist = wl,
            heartbeat_interval = 30, pong_deadline = 5, handshake_timeout = 30 }
        for k, v in pairs(env_cfg()) do cfg[k] = v end
        local hub = net:node("hub", (function()
            local c = {}
            for k, v in pairs(PROFILE) do c[k] = v end
            for k, v in pairs(cfg) do c[k] = v end
            return c
        end)())
        hub:start()
        H.sleep(1)
        local soft, hard = nofile(hub)
        local la = loadavg()
        -- held 35 s: every session exchanges a ping and pong (heartbeat_interval 30) before the
        -- steady-state RSS is read
        local r = run_idle(hub, net, { conns = conns, procs = procs, hold = 35, inflight = 64 })
        hub:stop()
        -- 128 active peers on a fresh node: every one fetches each transaction the node
        -- announces; one pushes 500 signed tx/s
        os.execute("rm -rf '" .. hub.cfg.data_dir .. "'")
        hub:start()
        H.sleep(1)
        local a = run_idle(hub, net, { conns = 128, procs = 2, hold = 10, active = true,
            tx_rate = 500, inflight = 64 })
        local per_conn = (r.rss2_kb - r.rss0_kb) * 1024 / math.max(1, r.opened)
        local per_conn_open = (r.rss1_kb - r.rss0_kb) * 1024 / math.max(1, r.opened)
        result = {
            params = base_params({ conns = conns, client_procs = procs, client_ips = wl,
                loadavg_at_start = la, node_nofile_soft = soft, node_nofile_hard = hard,
                fd_limit_note = "soft = hard on this machine; it cannot be raised, so the node "
                    .. "holds the 10,000 sockets and the clients run in " .. procs .. " other processes",
                config = "max_peers " .. cfg.max_peers .. ", max_inbound_pending 1024, whitelist = "
                    .. "the client IPs, heartbeat_interval 30",
                measured = "bytes_per_conn = (node VmRSS after the sessions were held idle 35 s - "
                    .. "VmRSS before the first dial) / sessions: user-space memory only (socket buffers "
                    .. "and structures are kernel memory, not in RSS); each session has its own "
                    .. "identity, completed the handshake, sent hello and answers pings",
                bytes_per_conn_just_opened = math.floor(per_conn_open + 0.5),
                opened = r.opened, failed = r.failed, open_s = r.open_s,
                sessions_at_node = r.node_sessions_open, sessions_at_node_after_hold =
                r.node_sessions_end, closed_during_hold = r.closed_during_hold, hold_s = r.hold_s,
                struct_bytes = string.format("tn_session_t %d (uv_tcp_t %d, uv_timer_t %d, rate "
                    .. "limit state %d), tn_peer_t %d", r.sizeof_session, r.sizeof_uv_tcp,
                    r.sizeof_uv_timer, r.sizeof_limits, r.sizeof_peer),
                kernel_bytes_per_socket = r.sock_slab_delta >= 0
                    and math.floor(r.sock_slab_delta / (2 * math.max(1, r.opened)) + 0.5) or nil,
                kernel_note = "kernel memory is not in the figure: slab caches TCP, sock_inode_cache and "
                    .. "eventpoll_epi grew by kernel_bytes_per_socket per socket (both loopback ends "
                    .. "counted, halved); idle sockets hold no buffer pages",
                rss_before_mb = round(r.rss0_kb / 1024, 1),
                rss_just_opened_mb = round(r.rss1_kb / 1024, 1),
                kernel_tcp_mem_delta_kb = r.tcp_mem1_kb - r.tcp_mem0_kb,
                node_cpu_opening_s = r.node_cpu_open_s, node_cpu_idle_hold_s = r.node_cpu_hold_s,
                active_sessions = a.node_sessions_end, active_opened = a.opened,
                active_tx_pushed = a.pushed, active_tx_fetched = a.fetched,
                active_fetch_ratio = a.pushed > 0 and round(a.fetched / (a.pushed * (a.opened - 1)), 4),
                active_rss_before_mb = round(a.rss0_kb / 1024, 1),
                active_node_cpu_s = a.node_cpu_hold_s,
                goal = "bytes_per_conn <= 1024" }),
            figures = {
                bytes_per_conn = math.floor(per_conn + 0.5),
                rss_mb = round(r.rss2_kb / 1024, 1),
                active_conns = a.opened,
                active_rss_mb = round(a.rss2_kb / 1024, 1),
            },
            floors = EMPTY,
        }
    end)
    return result
end

function B.net_n20_signed() return net_n20("signed") end
function B.net_n20_unsigned() return net_n20("flood") end

if not B[which or ""] then
    io.stderr:write("usage: lua5.4 tests/bench/netbench.lua "
        .. "load_20x1000|masternodes_100|net_n20_signed|net_n20_unsigned|idle_conns\n")
    os.exit(2)
end
local ok, res = xpcall(B[which], debug.traceback)
if not ok then
    io.stderr:write("netbench: FAIL: " .. tostring(res) .. "\n")
    os.exit(1)
end
print(json.encode(res))
