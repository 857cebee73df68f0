-- Discovery end to end (issue 6, seed §8): a node below min_peers tries its sources in the
-- policy's order — seeds, the HTTP peer API, peer exchange, the address table on disk —
-- falling through when one yields nothing; anchors (the outbound peers at shutdown) are
-- dialed first at the next start; a lost peer is replaced at once; hostile API answers are
-- ignored with one log line each; a flood of peer-exchange addresses stays within the
-- table's bound and never pushes out an address that worked.
local H = require("harness")
local httpd = require("httpd")
local A = require("advpeer")
local json = require("dkjson")

-- ASan keeps freed memory in quarantine (256 MiB): RSS budgets are looser there.
local RSS_SCALE = (os.getenv("BUILD") or ""):find("asan") and 16 or 1

local DISCOVERY = { discovery_interval = 0.2, peer_api_interval = 0.5, peer_api_timeout = 2,
    policy_tick_interval = 0.5 }

local function cfg(extra)
    local c = {}
    for k, v in pairs(DISCOVERY) do c[k] = v end
    for k, v in pairs(extra or {}) do c[k] = v end
    return c
end

-- An address where nothing listens (a port the kernel just gave back).
local function dead(net)
    local ip = net.block .. ".250"
    return string.format("%s:%d", ip, H.free_port(ip))
end

local function connected(n) return n:status().peers.connected end

local function connected_to(n, others)
    local ids = {}
    for _, p in ipairs(n:peers()) do if p.hello then ids[p.id] = true end end
    local k = 0
    for _, o in ipairs(others) do if ids[o:id()] then k = k + 1 end end
    return k
end

-- Line numbers of the first log line containing each text (nil if absent).
local function first_line(n, text)
    local i = 0
    for line in n:log():gmatch("[^\n]+") do
        i = i + 1
        if line:find(text, 1, true) then return i, line end
    end
end

local function addrs(n, limit) return n:ctl({ cmd = "addrs", limit = limit or 10000 }) end

local function in_table(n, addr)
    for _, e in ipairs(addrs(n).addrs) do if e.addr == addr then return e end end
end

describe("discovery", function()
    it("seeds down: finds its peers through the HTTP peer API", function()
        H.with_net(function(net)
            local peers = net:nodes_up(4, "p")
            local list = {}
            for i, p in ipairs(peers) do list[i] = { addr = p:addr(), id = p:id() } end
            local srv = httpd.start(net.block .. ".240", { ["/peers"] = {
                body = json.encode({ peers = list }) } })
            local n = net:node("n", cfg({ min_peers = 3, seeds = { dead(net) },
                peer_api_url = srv.url("/peers") }))
            n:start()
            H.wait(function() return connected(n) >= 3 end, 15, "n to reach min_peers")
            -- the seed came first and failed; then the API answered and its addresses were dialed
            local seed_i = first_line(n, "dialing 1 from seeds")
            local api_i = first_line(n, "Peer API: 4 addresses (4 new")
            local dial_i = first_line(n, "from api (nothing from seeds)")
            assert.is_truthy(seed_i, "a seed dial")
            assert.is_truthy(api_i, "the API's answer")
            assert.is_truthy(dial_i, "dials from the API")
            assert.is_true(seed_i < api_i and api_i < dial_i)
            assert.are.equal(1, srv.requests["/peers"])
            -- never more than asked for: min_peers 3, and nobody dials n
            H.sleep(1)
            assert.are.equal(3, connected(n))
            srv:close()
        end)
    end)

    -- p1 knows p2..p5 (it dialed them); n knows only p1 (a persistent peer), its seed and
    -- API are down: peer exchange with p1 gives it the others.
    local function hub_and_spokes(net)
        local spokes = net:nodes_up(4, "s")
        local list = {}
        for i, x in ipairs(spokes) do list[i] = x:addr() end
        local hub = net:node("hub", { persistent_peers = list })
        hub:start()
        hub:wait_connected(spokes)
        return hub, spokes
    end

    it("seeds and API down: finds its peers through peer exchange, and the cache after a restart",
        function()
        H.with_net(function(net)
            local hub, spokes = hub_and_spokes(net)
            local api_ip = net.block .. ".241"
            local n = net:node("n", cfg({ min_peers = 4, seeds = { dead(net) },
                persistent_peers = { hub:addr() },
                peer_api_url = string.format("http://%s:%d/peers", api_ip, H.free_port(api_ip)) }))
            n:start()
            H.wait(function() return connected_to(n, spokes) >= 3 end, 15, "n to reach min_peers")
            assert.is_truthy(first_line(n, "Peer API answer ignored: "), "the API was tried")
            local i, line = first_line(n, "from exchange (nothing from seeds, api)")
            assert.is_truthy(i, "dials from peer exchange after seeds and API")
            assert.is_truthy(line:find("dialing 3 from exchange", 1, true), line)
            assert.are.equal(4, connected(n))
            -- the addresses that worked are in the table as tried, learned from the hub
            for _, x in ipairs(spokes) do
                local e = in_table(n, x:addr())
                assert.is_truthy(e, x:addr() .. " in n's table")
                assert.are.equal("exchange", e.source)
                assert.are.equal(hub.ip, e.from)
            end

            -- all down: hub gone, seed and API still down; n is killed (no anchors saved) and
            -- restarted: only its table on disk is left
            -- writes are batched (store_flush_interval): let the last batch land, then kill -9
            H.sleep(0.3)
            n:kill()
            hub:kill()
            local before = #n:log()
            n.cfg.persistent_peers = nil
            n:start()
            H.wait(function() return connected_to(n, spokes) >= 3 end, 15, "n to reach its peers again")
            local tail = n:log():sub(before + 1)
            assert.is_truthy(tail:find("from cache (nothing from seeds, api)", 1, true), tail)
            assert.is_falsy(tail:find("Dialing anchor", 1, true), "no anchors after a kill -9")
        end)
    end)

    it("dials the outbound peers it had at shutdown first at the next start (anchors)", function()
        H.with_net(function(net)
            local hub, spokes = hub_and_spokes(net)
            local n = net:node("n", cfg({ min_peers = 3, persistent_peers = { hub:addr() } }))
            n:start()
            H.wait(function() return connected_to(n, spokes) >= 2 end, 15, "n to reach min_peers")
            local outbound = {}
            for _, p in ipairs(n:peers()) do
                if p.dir == "out" and p.hello then outbound[#outbound + 1] = p.addr end
            end
            assert.are.equal(3, #outbound) -- the hub and two spokes
            assert.are.equal(0, n:stop())
            local before = #n:log()
            n.cfg.persistent_peers = nil
            n:start()
            H.wait(function() return connected(n) >= 3 end, 15, "n to reconnect")
            local tail = n:log():sub(before + 1)
            -- the first dials after the start line are the anchors, all of them
            local dials = {}
            for l in tail:gmatch("[^\n]+") do
                local a = l:match("Dialing anchor (%S+)")
                if a then dials[#dials + 1] = a end
                if l:find("Discovery:", 1, true) then break end
            end
            table.sort(dials)
            table.sort(outbound)
            assert.are.same(outbound, dials)
            assert.is_truthy(tail:find("Dialing anchor", 1, true) < (tail:find("Discovery:", 1, true) or
                math.huge))
            -- and they are who it is connected to again
            local now = {}
            for _, p in ipairs(n:peers()) do if p.dir == "out" then now[#now + 1] = p.addr end end
            table.sort(now)
            assert.are.same(outbound, now)
        end)
    end)

    it("ignores hostile peer API answers, each kind logged once, and stays responsive", function()
        H.with_net(function(net)
            local hundred_k = {}
            for i = 1, 100000 do
                hundred_k[i] = string.format("\"%d.%d.%d.%d:24100\"", 1 + i % 200, i % 251, i % 241,
                    1 + i % 250)
            end
            local junk = { "10.0.0.1:24100", "192.168.1.1:24100", "127.0.0.1:24100", "0.0.0.0:24100",
                "255.255.255.255:24100", "224.0.0.1:24100", "169.254.1.1:24100", "100.64.0.1:24100",
                "[::1]:24100", "[fe80::1]:24100", "[fc00::1]:24100", "[ff02::1]:24100" }
            local cases = {
                { name = "huge", route = { body = string.rep(" ", 300000) .. "[]" },
                    log = "answer larger than 262144 bytes" },
                { name = "malformed", route = { body = "{\"peers\": [\"1.2.3.4:5\", " },
                    log = "not JSON" },
                { name = "trailing", route = { body = "[\"1.2.3.4:5\"] garbage" }, log = "not JSON" },
                { name = "nul", route = { body = "[\"1.2.3.4:5\"]\0[]" }, log = "a NUL byte" },
                { name = "type", route = { body = "{\"peers\": 5}" }, log = "expected a JSON array" },
                { name = "item", route = { body = "[\"1.2.3.4:5\", {\"addr\": 7}]" },
                    log = "item 2: no \"addr\" string" },
                { name = "address", route = { body = "[\"999.1.1.1:5\"]" },
                    log = "is not an address IP:port" },
                { name = "id", route = { body = "[{\"addr\": \"1.2.3.4:5\", \"id\": \"zz\"}]" },
                    log = "\"id\" is not 64 hex digits" },
                { name = "100k", route = { body = "[" .. table.concat(hundred_k, ",") .. "]" },
                    log = "more than 1000 addresses", max_bytes = 4 * 1024 * 1024 },
                { name = "status", route = { status = 500, body = "[]" }, log = "HTTP status 500" },
                { name = "hang", route = { hang = true }, log = "Timeout was reached" },
                { name = "drip", route = { drip = " ", every = 0.05 }, log = "Timeout was reached" },
            }
            local srv = httpd.start(net.block .. ".242", {})
            local n = net:node("n", cfg({ min_peers = 2, allow_local_addresses = false,
                peer_api_interval = 0.3, peer_api_timeout = 1, peer_api_url = srv.url("/peers") }))
            n:start()
            local rss0
            for _, c in ipairs(cases) do
                srv:route("/peers", c.route)
                if c.max_bytes then
                    n.cfg.peer_api_max_bytes = c.max_bytes
                    n:write_config()
                    assert.is_true(n:ctl("config_reload").ok)
                end
                local before = srv.requests["/peers"] or 0
                -- two requests with this answer: the second adds no log line
                H.wait(function() return (srv.requests["/peers"] or 0) >= before + 2 end, 10,
                    "two requests (" .. c.name .. ")")
                H.wait(function() return n:count(c.log) >= 1 end, 5, c.name .. " logged")
                local t0 = H.now()
                assert.are.equal(0, addrs(n).new, c.name .. ": nothing learned")
                assert.is_true(H.now() - t0 < 0.5, "the loop answers at once")
                rss0 = rss0 or tonumber(H.sh("ps -o rss= -p " .. n.pid))
            end
            for _, c in ipairs(cases) do
                local k = n:count("Peer API answer ignored: ")
                assert.is_true(k <= #cases + 1, "one line per kind of bad answer, got " .. k)
                assert.is_truthy(n:count(c.log) >= 1, c.name)
            end
            -- junk: well-formed, but not routable: all dropped, the one good address kept
            local list = {}
            for i, a in ipairs(junk) do list[i] = a end
            list[#list + 1] = "203.0.113.7:24100"
            srv:route("/peers", { body = json.encode(list) })
            n:wait_log("Peer API: 13 addresses (1 new, 12 dropped as not routable)", 10)
            local t = addrs(n)
            assert.are.equal(1, t.new + t.tried)
            assert.are.equal("203.0.113.7:24100", t.addrs[1].addr)
            assert.is_true(n:running())
            local rss = tonumber(H.sh("ps -o rss= -p " .. n.pid))
            io.stderr:write(string.format("\n[discovery_spec] hostile API answers: RSS %d KiB after, "
                .. "%d KiB after the first\n", rss, rss0))
            assert.is_true(rss < rss0 + 32 * 1024 * RSS_SCALE, "memory stays bounded")
            -- a request in flight at shutdown is cancelled cleanly (no leak under asan)
            srv:route("/peers", { hang = true })
            H.sleep(1)
            assert.are.equal(0, n:stop(), "exit code")
            srv:close()
        end)
    end)

    it("a peer-exchange flood stays within the table's bound and keeps every address that worked",
        function()
        H.with_net(function(net)
            local good = net:nodes_up(3, "g")
            local n = net:node("n", cfg({ min_peers = 3, peer_exchange_rate = 1e6,
                persistent_peers = { good[1]:addr(), good[2]:addr(), good[3]:addr() } }))
            -- first the table alone: the per-peer message rate limit (security) is lifted so
            -- all 10k addresses/s reach it
            local has_rate_limits = H.sh(H.BIN .. " --print-config"):find("\nrate_addresses =", 1, true)
            if has_rate_limits then n.cfg.rate_addresses = { 0, 0 } end
            n:start()
            n:wait_connected(good)
            H.sleep(0.3)
            local ip, port = n:addr():match("^(.+):(%d+)$")
            local function flood(src, seconds, rate)
                local p = assert(A.connect(ip, port, { src = src }))
                assert(p:handshake())
                assert(p:hello({ name = "flooder", listen_port = 0 }))
                local sent, t0, k = 0, H.now(), 0
                while H.now() - t0 < seconds do
                    local list = {}
                    for i = 1, 1000 do -- public addresses in 80 /8s, many /16 groups
                        k = k + 1
                        list[i] = { ip = string.format("%d.%d.%d.%d", 11 + k % 80, (k // 80) % 256,
                            (k // 20480) % 256, 1 + k % 254), port = 24100 }
                    end
                    if not p:send_msgs({ { A.T.MSG_PEERS, A.peers_payload(list) } }) then break end
                    sent = sent + 1000
                    local ahead = t0 + sent / rate - H.now()
                    if ahead > 0 then H.sleep(ahead) end
                end
                p:close()
                return sent
            end
            local rss0 = tonumber(H.sh("ps -o rss= -p " .. n.pid))
            local sent = flood(net.block .. ".77", 4, 10000)
            local t = addrs(n)
            local learned = n:metric('tn_pex_addresses_total{outcome="learned"}')
            local cap = t.capacity
            io.stderr:write(string.format("\n[discovery_spec] flood of %d addresses from one peer: "
                .. "%d learned, table %d new + %d tried (bound %d)\n", sent, learned, t.new, t.tried, cap))
            assert.is_true(sent >= 20000)
            assert.is_true(t.new + t.tried <= cap)
            -- one source reaches at most 16 buckets of 16: 256 addresses
            assert.is_true(t.new <= 256 + 3, "one peer filled " .. t.new .. " new entries")
            -- every address that worked is still there, still tried
            for _, g in ipairs(good) do
                local e = in_table(n, g:addr())
                assert.is_truthy(e, g:addr() .. " kept")
                assert.is_true(e.tried, g:addr() .. " still tried")
            end
            local rss = tonumber(H.sh("ps -o rss= -p " .. n.pid))
            io.stderr:write(string.format("[discovery_spec] flood: RSS %d KiB before, %d KiB after\n",
                rss0, rss))
            assert.is_true(rss < rss0 + 16 * 1024 * RSS_SCALE,
                "RSS grew from " .. rss0 .. " to " .. rss .. " KiB")
            -- at the default rates the flood is dropped at the door: the message limit and
            -- peer_exchange_rate (0.1 addresses/s)
            n.cfg.peer_exchange_rate = 0.1
            n.cfg.rate_addresses = nil
            n:write_config()
            assert.is_true(n:ctl("config_reload").ok)
            local before = n:metric('tn_pex_addresses_total{outcome="learned"}')
            -- (the first flood may have logged too: its first message can come in the
            -- millisecond its session opened, before any token accrued)
            local logged = n:count("sends addresses faster than peer_exchange_rate")
            flood(net.block .. ".78", 2, 10000)
            H.sleep(0.2)
            local after = n:metric('tn_pex_addresses_total{outcome="learned"}')
            assert.is_true(after - before <= 2, "learned " .. (after - before) .. " at 0.1/s")
            assert.is_true(n:metric('tn_pex_addresses_total{outcome="rate_limited"}') >= 4000)
            assert.are.equal(logged + 1, n:count("sends addresses faster than peer_exchange_rate"))
            for _, g in ipairs(good) do assert.is_truthy(n:peer_row(g), "still connected") end
        end)
    end)

    -- Four candidates in four /16 groups, in address order; the first three share an ASN.
    -- Without a GeoIP database the first two dials go to the first two addresses (one ASN);
    -- with one (a test MaxMind DB), to both ASNs.
    it("with geoip_db, outbound dials prefer distinct ASNs", function()
        H.with_net(function(net)
            local mmdb = require("mmdb")
            local cands, list, entries, asn_of = {}, {}, {}, {}
            for i = 1, 4 do
                local a = 150 + i -- three digits each: address order is text order too
                cands[i] = net:node("c" .. i, { ip = string.format("127.%d.7.2", a) })
                entries[i] = { prefix = string.format("127.%d.0.0/16", a),
                    asn = i < 4 and 64500 or 64501, country = i < 4 and "DE" or "FR" }
                list[i] = cands[i]:addr()
                asn_of[list[i]] = entries[i].asn
            end
            for _, c in ipairs(cands) do c:start() end
            local db = net.dir .. "/geo.mmdb"
            mmdb.write(db, entries)
            local srv = httpd.start(net.block .. ".244", { ["/peers"] = { body = json.encode(list) } })
            local function run(name, with_geo)
                local n = net:node(name, cfg({ min_peers = 2, peer_api_url = srv.url("/peers"),
                    geoip_db = with_geo and db or nil }))
                n:start()
                H.wait(function() return connected(n) >= 2 end, 10, name .. " to reach min_peers")
                local asns = {}
                for _, p in ipairs(n:peers()) do
                    if asn_of[p.addr] then asns[#asns + 1] = asn_of[p.addr] end
                end
                table.sort(asns)
                assert.are.equal(0, n:stop())
                return asns, n
            end
            local plain = run("plain", false)
            local geo, n = run("geo", true)
            assert.are.same({ 64500, 64500 }, plain, "without the database: by address")
            assert.are.same({ 64500, 64501 }, geo, "with it: two ASNs")
            assert.are.equal(1, n:count("GeoIP: " .. db .. " (Test-ASN-Country)"))
            srv:close()
        end)
    end)

    it("replaces a lost peer at once from its ranked candidates (failover)", function()
        H.with_net(function(net)
            local hub, spokes = hub_and_spokes(net)
            -- the periodic round is slow: what replaces the lost peer is the loss itself
            local n = net:node("n", cfg({ min_peers = 3, discovery_interval = 60,
                persistent_peers = { hub:addr() } }))
            n:start()
            H.wait(function() return connected_to(n, spokes) >= 2 end, 15, "n to reach min_peers")
            H.sleep(0.5)
            local victim
            for _, x in ipairs(spokes) do if n:peer_row(x) then victim = x end end
            local before = connected_to(n, spokes)
            local t0 = H.now()
            victim:kill()
            H.wait(function()
                local k = 0
                for _, x in ipairs(spokes) do
                    local r = x ~= victim and n:peer_row(x)
                    if r and r.hello then k = k + 1 end
                end
                return k >= before
            end, 5, "a replacement")
            local ms = (H.now() - t0) * 1000
            io.stderr:write(string.format("\n[discovery_spec] lost peer replaced in %.0f ms "
                .. "(discovery_interval 60 s: the loss triggers the round)\n", ms))
            assert.is_true(ms < 3000)
        end)
    end)
end)
