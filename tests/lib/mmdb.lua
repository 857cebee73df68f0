-- A minimal MaxMind DB writer for tests (format: https://maxmind.github.io/MaxMind-DB/): an
-- IPv4 database whose IPv4 prefixes map to { autonomous_system_number = n } and/or
-- { country = { iso_code = "XX" } }, the shapes of GeoLite2-ASN and GeoLite2-Country, so a
-- spec can give a node a GeoIP database of 127.A.B.C addresses.
--
--   local mmdb = require("mmdb")
--   mmdb.write(path, { { prefix = "127.10.0.0/16", asn = 64500, country = "DE" }, ... })
local M = {}

local RECORD_SIZE = 24 -- bits per search-tree record: 3 bytes, 6 bytes per node

-- Data section encoding of the few types used here.
local function ctrl(typ, size)
    assert(size < 29, "short sizes only")
    if typ <= 7 then return string.char((typ << 5) | size) end
    return string.char(size, typ - 7) -- extended type: type 0 in the first byte
end

local function uint(typ, n)
    local bytes = {}
    while n > 0 do
        table.insert(bytes, 1, string.char(n & 0xff))
        n = n >> 8
    end
    return ctrl(typ, #bytes) .. table.concat(bytes)
end

local function utf8s(s) return ctrl(2, #s) .. s end

local function map(pairs_) -- pairs_ = { {key, encoded value}, ... }
    local parts = { ctrl(7, #pairs_) }
    for _, kv in ipairs(pairs_) do parts[#parts + 1] = utf8s(kv[1]) .. kv[2] end
    return table.concat(parts)
end

local function array(items)
    return ctrl(11, #items) .. table.concat(items)
end

local function record(entry)
    local fields = {}
    if entry.asn then fields[#fields + 1] = { "autonomous_system_number", uint(6, entry.asn) } end
    if entry.country then
        fields[#fields + 1] = { "country", map({ { "iso_code", utf8s(entry.country) } }) }
    end
    return map(fields)
end

local function prefix_bits(prefix)
    local a, b, c, d, len = prefix:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)/(%d+)$")
    assert(a, "IPv4 prefix expected: " .. tostring(prefix))
    local ip = (tonumber(a) << 24) | (tonumber(b) << 16) | (tonumber(c) << 8) | tonumber(d)
    local bits = {}
    for i = 1, tonumber(len) do bits[i] = (ip >> (32 - i)) & 1 end
    return bits
end

function M.write(path, entries)
    -- a binary trie of the prefixes; a leaf holds its entry's data offset
    local root = {}
    local data_parts, data_len = {}, 0
    for _, e in ipairs(entries) do
        local rec = record(e)
        local offset = data_len
        data_parts[#data_parts + 1] = rec
        data_len = data_len + #rec
        local node = root
        local bits = prefix_bits(e.prefix)
        for i, bit in ipairs(bits) do
            if i == #bits then
                node[bit] = { leaf = offset }
            else
                node[bit] = node[bit] or {}
                assert(not node[bit].leaf, "overlapping prefixes")
                node = node[bit]
            end
        end
    end
    -- number the inner nodes breadth first (the root is node 0)
    local nodes, queue = {}, { root }
    while #queue > 0 do
        local n = table.remove(queue, 1)
        nodes[#nodes + 1] = n
        n.index = #nodes - 1
        for bit = 0, 1 do
            local child = n[bit]
            if child and not child.leaf then queue[#queue + 1] = child end
        end
    end
    local count = #nodes
    local tree = {}
    for _, n in ipairs(nodes) do
        for bit = 0, 1 do
            local child, value = n[bit], count -- count: no data
            if child and child.leaf then
                value = count + 16 + child.leaf
            elseif child then
                value = child.index
            end
            tree[#tree + 1] = string.pack(">I3", value)
        end
    end
    local meta = map({
        { "node_count", uint(6, count) },
        { "record_size", uint(5, RECORD_SIZE) },
        { "ip_version", uint(5, 4) },
        { "database_type", utf8s("Test-ASN-Country") },
        { "languages", array({ utf8s("en") }) },
        { "binary_format_major_version", uint(5, 2) },
        { "binary_format_minor_version", uint(5, 0) },
        { "build_epoch", uint(9, os.time()) },
        { "description", map({ { "en", utf8s("timenet test database") } }) },
    })
    local f = assert(io.open(path, "wb"))
    f:write(table.concat(tree), string.rep("\0", 16), table.concat(data_parts),
        "\xAB\xCD\xEFMaxMind.com", meta)
    f:close()
end

return M
