-- Packet loss for local test networks: every node in a network namespace of its own, joined
-- by veth pairs to a bridge in one hub namespace, on a private range that exists only inside
-- these namespaces (10.77.0.0/16); nftables in a node's namespace drops a share of the
-- packets from chosen peers (`numgen random mod 100 < P drop`), so TCP sees real loss and
-- retransmits. Needs root, `ip` and `nft` (Debian: iproute2, nftables); nothing outside the
-- run's own namespaces is changed (the veth pairs are created and moved at once).
--
--   local NS = require("netns")
--   assert(NS.available())
--   local st = NS.setup("run1", 3)               -- namespaces, bridge, addresses
--   node.cfg.listen = NS.ip(1) .. ":24100"; node.prefix = NS.prefix(st, 1)
--   NS.loss(st, 1, 2, 20)                        -- 20 % of packets between n1 and n2 dropped
--   NS.dropped(st, 2)                            -- packets n2's rules dropped so far
--   NS.teardown(st)
local M = {}

local function sh(cmd)
    local p = io.popen(cmd .. " 2>&1")
    local out = p:read("a")
    local ok = p:close()
    return ok, out
end

local function run(cmd)
    local ok, out = sh(cmd)
    if not ok then error("netns: " .. cmd .. ": " .. out, 2) end
    return out
end

-- true, or false and what is missing.
function M.available()
    local id = io.popen("id -u"):read("l")
    if id ~= "0" then return false, "not running as root" end
    if not sh("command -v ip >/dev/null") then return false, "`ip` (iproute2) not installed" end
    if not sh("command -v nft >/dev/null") then
        return false, "`nft` not installed (apt-get install nftables)"
    end
    local ok, out = sh("ip netns add tn-probe-$$ && ip netns del tn-probe-$$")
    if not ok then return false, "cannot create network namespaces: " .. out end
    return true
end

function M.ip(i) return string.format("10.77.%d.%d", i // 250, i % 250 + 1) end

-- Short names (interface names are at most 15 bytes), unique per run: the run's name, this
-- process and the clock go into the tag, so a run never meets the namespaces of another run
-- on the same machine, nor those an interrupted run left behind.
local function tag(run_name)
    local seed = run_name .. "|" .. tostring(io.popen("echo $PPID"):read("l"))
        .. "|" .. tostring(os.time()) .. "|" .. tostring(os.clock()) .. "|" .. tostring({})
    local h = 0
    for c in seed:gmatch(".") do h = (h * 31 + c:byte()) % 0xFFFFFF end
    return string.format("%06x", h)
end

-- Namespaces named like a run's (leftovers of a killed run with the same tag) are removed
-- before it starts.
local function clear_stale(st)
    local _, out = sh("ip netns list")
    for name in out:gmatch("(%S+)[^\n]*") do
        if name == st.hub or name:find("^tn" .. st.tag .. "%-%d+$") then
            sh("ip netns del " .. name)
        end
    end
end

-- The namespaces of this run that still exist (empty after teardown).
function M.leftovers(st)
    local _, out = sh("ip netns list")
    local left = {}
    for name in out:gmatch("(%S+)[^\n]*") do
        if name == st.hub or name:find("^tn" .. st.tag .. "%-%d+$") then left[#left + 1] = name end
    end
    return left
end

function M.setup(run_name, n)
    local t = tag(run_name)
    local st = { tag = t, hub = "tnh" .. t, n = n, ns = {} }
    clear_stale(st)
    run("ip netns add " .. st.hub)
    run(string.format("ip -n %s link add br0 type bridge && ip -n %s link set br0 up && "
        .. "ip -n %s link set lo up", st.hub, st.hub, st.hub))
    for i = 1, n do
        local ns = string.format("tn%s-%d", t, i)
        st.ns[i] = ns
        local a, b = string.format("t%s%da", t, i), string.format("t%s%db", t, i)
        run(string.format("ip netns add %s && ip link add %s type veth peer name %s && "
            .. "ip link set %s netns %s && ip link set %s netns %s && "
            .. "ip -n %s link set %s master br0 up && "
            .. "ip -n %s link set %s name eth0 && ip -n %s addr add %s/16 dev eth0 && "
            .. "ip -n %s link set eth0 up && ip -n %s link set lo up",
            ns, a, b, a, st.hub, b, ns, st.hub, a, ns, b, ns, M.ip(i), ns, ns))
        run(string.format("ip netns exec %s nft add table inet tn && ip netns exec %s nft "
            .. "'add chain inet tn input { type filter hook input priority 0; }'", ns, ns))
    end
    return st
end

-- The command prefix that runs a program inside node i's namespace.
function M.prefix(st, i) return { "ip", "netns", "exec", st.ns[i] } end

-- Drops pct % of the packets each way between nodes a and b (rules in both namespaces).
function M.loss(st, a, b, pct)
    for _, pair in ipairs({ { a, b }, { b, a } }) do
        local at, from = pair[1], pair[2]
        run(string.format("ip netns exec %s nft add rule inet tn input ip saddr %s "
            .. "numgen random mod 100 '<' %d counter drop", st.ns[at], M.ip(from), math.floor(pct)))
    end
end

-- Packets node i's rules dropped so far.
function M.dropped(st, i)
    local _, out = sh(string.format("ip netns exec %s nft list chain inet tn input", st.ns[i]))
    local total = 0
    for p in out:gmatch("counter packets (%d+)") do total = total + tonumber(p) end
    return total
end

function M.teardown(st)
    for i = 1, st.n do
        if st.ns[i] then sh("ip netns del " .. st.ns[i]) end
    end
    sh("ip netns del " .. st.hub)
end

return M
