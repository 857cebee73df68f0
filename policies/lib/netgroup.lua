-- Network groups for diversity (seed §21 Geographic Diversity, §10 "keep connections to
-- geographically diverse peers"): peers in one group are likely one operator, one provider or
-- one attacker. Used by eviction.lua and discovery.lua through require("netgroup").
local M = {}

local IPV4_PREFIX_OCTETS = 2  -- /16 for IPv4 (DESIGN.md: network groups /16 IPv4)
local IPV6_PREFIX_HEXTETS = 2 -- /32 for IPv6 (DESIGN.md: network groups /32 IPv6)
local IPV4_TEXT_MAX = 15       -- "255.255.255.255"; longer is not an IPv4 address
local IPV6_TEXT_MAX = 45       -- longest IPv6 text; also keeps pattern worst cases small
local IP_TEXT_MAX = 128        -- anything longer is not an IP at all

local function ipv4_group(ip)
    if #ip > IPV4_TEXT_MAX then return nil end
    local a, b = ip:match("^(%d+)%.(%d+)%.%d+%.%d+$")
    if not a then return nil end
    local octets = { tonumber(a), tonumber(b) }
    return table.concat(octets, ".", 1, IPV4_PREFIX_OCTETS)
end

-- Expands the first hextets of an IPv6 text ("2001:db8::1", "::1", "[fe80::1%eth0]").
local function ipv6_group(ip)
    ip = ip:gsub("^%[", ""):gsub("%]$", ""):gsub("%%.*$", "")
    if #ip > IPV6_TEXT_MAX then return nil end
    local v4 = ip:match("^::[fF][fF][fF][fF]:(%d+%.%d+%.%d+%.%d+)$")
    if v4 then return ipv4_group(v4) end -- IPv4-mapped: group as IPv4
    local head = ip
    local cut = ip:find("::", 1, true)
    if cut then head = ip:sub(1, cut - 1) end
    local hextets = {}
    for h in head:gmatch("[^:]+") do hextets[#hextets + 1] = h end
    -- a "::" right after fewer than IPV6_PREFIX_HEXTETS hextets stands for zeros
    for i = 1, IPV6_PREFIX_HEXTETS do
        local h = hextets[i]
        local n = h and tonumber(h, 16) or 0
        if not n then return nil end
        hextets[i] = string.format("%x", n)
    end
    return table.concat(hextets, ":", 1, IPV6_PREFIX_HEXTETS)
end

-- The group of an IP text (no port): "10.1" for 10.1.2.3, "2001:db8" for 2001:db8::1.
-- Unparseable input gets a group of its own, so it is never lumped with others.
function M.of(ip)
    if type(ip) ~= "string" or ip == "" then return "?" end
    if #ip > IP_TEXT_MAX then return "?" .. ip end
    local g
    if ip:find(":", 1, true) then
        g = ipv6_group(ip)
    else
        g = ipv4_group(ip)
    end
    return g or ("?" .. ip)
end

-- The IP part of "IP:port" or "[IPv6]:port".
function M.ip_of(addr)
    if type(addr) ~= "string" then return nil end
    local v6 = addr:match("^%[([^%]]+)%]")
    if v6 then return v6 end
    return (addr:match("^([^:]+):%d+$")) or addr
end

return M
