-- Merges bench outputs into var/bench/results.json (one entry per bench name: a bench run
-- alone replaces only its own entry) and prints the figures, floors and ratios on stdout.
-- Usage: lua5.4 tests/bench/results.lua RESULTS name=output.json ...
local json = require("dkjson")

local TOP_KEYS <const> = { "name", "params", "figures", "floors", "machine" }

local function read(path)
    local f = io.open(path, "r")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end

local function sh(cmd)
    local p = io.popen(cmd)
    local s = p and p:read("l") or ""
    if p then p:close() end
    return s or ""
end

local function machine()
    local cpu, cores = "unknown", 0
    for line in (read("/proc/cpuinfo") or ""):gmatch("[^\n]+") do
        local m = line:match("^model name%s*:%s*(.-)%s*$")
        if m and cpu == "unknown" then cpu = m end
        if line:match("^processor%s*:") then cores = cores + 1 end
    end
    return {
        cpu = cpu,
        cores = tonumber(sh("nproc")) or cores,
        kernel = sh("uname -r"),
        date = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    }
end

-- Stable output: the five top keys in their documented order, everything else sorted.
local function ordered(v, top)
    if type(v) ~= "table" then return v end
    local mt = getmetatable(v)
    if mt and mt.__jsontype == "array" or (not mt and #v > 0) then
        for i = 1, #v do v[i] = ordered(v[i], true) end
        return setmetatable(v, { __jsontype = "array" })
    end
    local keys, first = {}, {}
    if top then
        for _, k in ipairs(TOP_KEYS) do
            if v[k] ~= nil then
                keys[#keys + 1] = k
                first[k] = true
            end
        end
    end
    local rest = {}
    for k, x in pairs(v) do
        v[k] = ordered(x, false)
        if not first[k] then rest[#rest + 1] = k end
    end
    table.sort(rest)
    for _, k in ipairs(rest) do keys[#keys + 1] = k end
    return setmetatable(v, { __jsontype = "object", __jsonorder = keys })
end

local function fmt(k, x)
    if type(x) ~= "number" then return tostring(x) end
    if math.type(x) == "float" and x ~= math.floor(x) or math.abs(x) < 100 then
        return string.format("%.3f", x)
    end
    local s = string.format("%.0f", x):reverse():gsub("(%d%d%d)", "%1,"):reverse()
    s = s:gsub("^,", "")
    if k:match("bytes_per_s$") then s = s .. string.format("  (%.1f MB/s)", x / 1e6) end
    return s
end

local function sorted_keys(t)
    local ks = {}
    for k in pairs(t or {}) do ks[#ks + 1] = k end
    table.sort(ks)
    return ks
end

local function main(results_path, ...)
    local results = {}
    local old = read(results_path)
    if old then
        local v, _, err = json.decode(old)
        if type(v) == "table" then
            results = v
        else
            io.stderr:write(("bench: %s is not valid JSON (%s): starting a new file\n")
                :format(results_path, tostring(err)))
            os.rename(results_path, results_path .. ".bad")
        end
    end
    local mach = machine()
    local run = {}
    for _, arg in ipairs({ ... }) do
        local name, path = arg:match("^([^=]+)=(.+)$")
        local obj, _, err = json.decode(read(path) or "")
        if type(obj) ~= "table" or type(obj.figures) ~= "table" then
            io.stderr:write(("bench: %s printed no valid result object (%s)\n")
                :format(name, tostring(err or "no figures")))
            os.exit(1)
        end
        local entry = {
            name = name,
            params = obj.params or {},
            figures = obj.figures,
            floors = obj.floors or {},
            machine = mach,
        }
        local replaced = false
        for i, e in ipairs(results) do
            if type(e) == "table" and e.name == name then
                results[i] = entry
                replaced = true
            end
        end
        if not replaced then results[#results + 1] = entry end
        run[#run + 1] = entry
    end

    local text = json.encode(ordered(results, true), { indent = true }) .. "\n"
    local tmp = results_path .. ".tmp"
    local f = assert(io.open(tmp, "w"))
    f:write(text)
    f:close()
    assert(os.rename(tmp, results_path))

    -- Summary: figures, then floors; the ratio is a figure (see the bench's params.ratio).
    print(("%-18s %-8s %-20s %s"):format("bench", "kind", "key", "value"))
    for _, e in ipairs(run) do
        local label = e.name
        local rows = {}
        for _, k in ipairs(sorted_keys(e.figures)) do
            if k ~= "ratio" then rows[#rows + 1] = { "figure", k, e.figures[k] } end
        end
        for _, k in ipairs(sorted_keys(e.floors)) do rows[#rows + 1] = { "floor", k, e.floors[k] } end
        if e.figures.ratio then rows[#rows + 1] = { "ratio", "ratio", e.figures.ratio } end
        for _, r in ipairs(rows) do
            local note = (r[1] == "ratio" and e.params.ratio) and ("  = " .. e.params.ratio) or ""
            print(("%-18s %-8s %-20s %s%s"):format(label, r[1], r[2], fmt(r[2], r[3]), note))
            label = ""
        end
    end
    print(("machine: %s, %s cores, kernel %s, %s; results in %s"):format(mach.cpu, mach.cores,
        mach.kernel, mach.date, results_path))
end

main(...)
