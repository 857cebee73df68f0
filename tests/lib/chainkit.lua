-- Helpers for the chain specs (chain_spec, sync_spec, production_spec): masternode keys,
-- test-scale chain configs, meshes, the main chain as the node stored it, mempools, and
-- waits for tips to agree. Built on tests/lib/harness.lua and the timenet codec module.
--
--   local K = require("chainkit")
--   local mns = K.keys(3)                    -- { {pk=, sk=, id=hex}, ... } sorted by id
--   local a = K.node(net, "a", { ... }, mns[1])  -- chain defaults + masternodes + key file
--   K.mesh({ a, b, c })                      -- each node dials the ones declared before it
--   K.main_chain(a)                          -- { {height=, slot=, producer=, txids={...}}, ... }
local H = require("harness")
local T = require("timenet")

local K = {}

-- Test-scale chain settings (issue 5): slots and sync at second scale, a small dedup cache.
K.CHAIN = {
    block_interval = 0.5,
    sync_interval = 1,
    sync_timeout = 1,
    relay_request_timeout = 1,
    dedup_capacity = 10000,
    dedup_window = 600,
    store_flush_interval = 0.05,
}

-- n fresh Ed25519 keys sorted by node id (the schedule's order: round robin over the
-- sorted set, so slot % n picks keys[slot % n + 1]).
function K.keys(n)
    local list = {}
    for i = 1, n do
        local pk, sk = T.keypair()
        list[i] = { pk = pk, sk = sk, id = T.hex(pk) }
    end
    table.sort(list, function(a, b) return a.id < b.id end)
    return list
end

function K.ids(keys)
    local out = {}
    for i, k in ipairs(keys) do out[i] = k.id end
    return out
end

-- Writes a node key (hex of the 64-byte secret, mode 0600) before the node's first start.
function K.write_key(node, key)
    os.execute("mkdir -p " .. node.cfg.data_dir)
    local path = node.cfg.data_dir .. "/node.key"
    H.write_file(path, T.hex(key.sk) .. "\n")
    os.execute("chmod 600 " .. path)
end

-- Declares a node with K.CHAIN under cfg; key (optional) becomes its node key.
function K.node(net, name, cfg, key)
    local c = {}
    for k, v in pairs(K.CHAIN) do c[k] = v end
    for k, v in pairs(cfg or {}) do c[k] = v end
    local node = net:node(name, c)
    if key then K.write_key(node, key) end
    return node
end

-- Every node dials every node declared before it (start them in list order).
function K.mesh(nodes)
    for i, n in ipairs(nodes) do
        local peers = {}
        for j = 1, i - 1 do peers[#peers + 1] = nodes[j]:addr() end
        n.cfg.persistent_peers = peers
    end
end

function K.start_all(nodes)
    for _, n in ipairs(nodes) do n:start() end
end

-- Waits until each node has an established session with every other node in the list.
function K.wait_mesh(nodes, timeout)
    for _, n in ipairs(nodes) do
        local others = {}
        for _, o in ipairs(nodes) do if o ~= n then others[#others + 1] = o end end
        n:wait_connected(others, timeout or 15)
    end
end

function K.chain(node) return node:ctl("chain") end

-- The node's mempool ids as a set (hex -> true).
function K.mempool(node)
    local set = {}
    for _, id in ipairs(node:ctl({ cmd = "mempool", ids = true, limit = 100000 }).ids or {}) do
        set[id] = true
    end
    return set
end

-- Submits a raw transaction at node; returns its id (hex). Fails the test if refused.
function K.submit(node, raw)
    local r = node:ctl({ cmd = "tx_submit", hex = T.hex(raw) })
    assert(r.ok, node.name .. ": tx_submit: " .. tostring(r.error))
    return r.id
end

-- A signed transaction (payload padded to `size` bytes of tx when given), far from expiry.
function K.tx(key, nonce, payload, expiry_s)
    local raw, id = T.tx(key.sk, expiry_s or (os.time() + 3600), nonce, payload or "")
    return raw, T.hex(id)
end

---------------------------------------------------------------------------- blocks

-- Parses a raw block (tn_tx.h layout) into a table; tx ids via the codec.
function K.parse_block(raw)
    local version, height, prev, slot, time_ms, producer, root, count, pos =
        string.unpack(">B I8 c32 I8 I8 c32 c32 I4", raw)
    local b = { version = version, height = height, prev = T.hex(prev), slot = slot,
        time_ms = time_ms, producer = T.hex(producer), root = T.hex(root), count = count,
        txids = {} }
    pos = pos + 64 -- the signature
    for i = 1, count do
        local len
        len, pos = string.unpack(">I4", raw, pos)
        local tx = assert(T.tx_parse(raw:sub(pos, pos + len - 1)))
        b.txids[i] = T.hex(tx.id)
        pos = pos + len
    end
    return b
end

-- Every block in the node's store: id (hex) -> raw bytes. Reads the SQLite file next to the
-- running node (WAL: readers never block the writer); sqlite3 CLI, else python3.
function K.stored_blocks(node)
    local db = node.cfg.data_dir .. "/store.db"
    local q = "SELECT id, hex(raw) FROM blocks"
    local cmd
    if os.execute("command -v sqlite3 >/dev/null 2>&1") then
        cmd = string.format("sqlite3 -readonly -separator ' ' '%s' '%s'", db, q)
    else
        cmd = string.format("python3 -c \"import sqlite3; "
            .. "c=sqlite3.connect('file:%s?mode=ro', uri=True)\n"
            .. "for r in c.execute('%s'): print(r[0], r[1])\"", db, q)
    end
    local out = {}
    for line in H.sh(cmd .. " 2>/dev/null"):gmatch("[^\n]+") do
        local id, hex = line:match("^(%x+) (%x+)$")
        if id then out[id:lower()] = T.unhex(hex:lower()) end
    end
    return out
end

-- Rows of a store table through the sqlite3 CLI (or python3): a list of strings, one per row,
-- columns separated by '|'.
function K.store_rows(node, sql)
    local db = node.cfg.data_dir .. "/store.db"
    local cmd
    if os.execute("command -v sqlite3 >/dev/null 2>&1") then
        cmd = string.format("sqlite3 -readonly '%s' \"%s\"", db, sql)
    else
        cmd = string.format("python3 -c \"import sqlite3; c=sqlite3.connect('file:%s?mode=ro', uri=True)\n"
            .. "for r in c.execute('''%s'''): print('|'.join(map(str, r)))\"", db, sql)
    end
    local rows = {}
    for line in H.sh(cmd .. " 2>/dev/null"):gmatch("[^\n]+") do rows[#rows + 1] = line end
    return rows
end

-- The node's main chain from height 1 to its tip, walked back from the tip through the
-- blocks it stored. Waits for the store to hold the tip (writes are batched).
function K.main_chain(node, timeout)
    local list
    H.wait(function()
        local c = K.chain(node)
        local stored = K.stored_blocks(node)
        local out, id = {}, c.tip
        while id ~= c.genesis do
            local raw = stored[id]
            if not raw then return false end
            local b = K.parse_block(raw)
            b.id = id
            table.insert(out, 1, b)
            id = b.prev
        end
        if #out ~= c.height then return false end
        list = out
        return true
    end, timeout or 5, node.name .. "'s main chain in its store")
    return list
end

-- Set of tx ids (hex) on a main chain.
function K.chain_txs(chain)
    local set = {}
    for _, b in ipairs(chain) do
        for _, id in ipairs(b.txids) do set[id] = true end
    end
    return set
end

-- Waits until every node reports the same tip at a height of at least min_height; returns
-- the common chain verb reply.
function K.wait_same_tip(nodes, timeout, min_height)
    local common
    H.wait(function()
        local first = K.chain(nodes[1])
        if first.height < (min_height or 0) then return false end
        for i = 2, #nodes do
            local c = K.chain(nodes[i])
            if c.tip ~= first.tip then return false end
        end
        common = first
        return true
    end, timeout or 15, "the same tip on " .. #nodes .. " nodes")
    return common
end

-- Lines of the node's log containing text, as a list.
function K.lines(node, text)
    local out = {}
    for line in node:log():gmatch("[^\n]+") do
        if line:find(text, 1, true) then out[#out + 1] = line end
    end
    return out
end

-- Slot arithmetic as the node does it: slot = floor(unix ms / slot ms).
function K.slot_ms(node) return math.floor(node.cfg.block_interval * 1000 + 0.5) end

function K.now_ms() return math.floor(require("socket").gettime() * 1000) end

return K
