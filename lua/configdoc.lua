-- Writes the configuration reference (doc/config.md) from `timenetd --print-config`, which
-- prints every key with its default and documentation from c/tn_config_keys.h, the one place
-- they live. `make doc` runs it:
--   timenetd --print-config | lua5.4 lua/configdoc.lua > doc/config.md
local LIVE_MARK = " [live: applied by config reload]"

local text = io.read("a")
local keys = {}
-- each key: "\n-- <doc>\n<name> = <value>\n"
for doc, name, value in text:gmatch("\n%-%- ([^\n]*)\n([%w_]+) = ([^\n]*)") do
    local live = false
    if doc:sub(-#LIVE_MARK) == LIVE_MARK then
        live = true
        doc = doc:sub(1, -#LIVE_MARK - 1)
    end
    keys[#keys + 1] = { name = name, value = value, doc = doc, live = live }
end
assert(#keys > 0, "no keys in the input: pipe `timenetd --print-config` into this script")

local function cell(s) return (s:gsub("|", "\\|")) end

local out = {
    "# timenetd configuration reference",
    "",
    "Generated from `timenetd --print-config` by `make doc` (`lua/configdoc.lua`); the keys,",
    "defaults and texts live in `c/tn_config_keys.h`. The config file is Lua, one assignment per",
    "key; unknown keys and out-of-range values are errors reported as `file:line`",
    "(`timenetd --check-config FILE`). Durations are seconds and may be fractions.",
    "",
    "**Live** keys take effect on `timenetctl config reload` (or SIGHUP, `systemctl reload",
    "timenetd`) without a restart; the policy is reloaded with them so `tn.config` follows.",
    "A changed key that is not live is reported as needing a restart and keeps its old value",
    "until then. The host name is the default `node_name` (the machine that generated this",
    "file shows its own).",
    "",
    "| key | default | live | meaning |",
    "|---|---|---|---|",
}
for _, k in ipairs(keys) do
    local value = k.name == "node_name" and '"(host name)"' or k.value
    out[#out + 1] = string.format("| `%s` | `%s` | %s | %s |", k.name, cell(value),
        k.live and "yes" or "", cell(k.doc))
end
io.write(table.concat(out, "\n"), "\n")
