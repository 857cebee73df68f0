-- luacheck config: Lua 5.4 everywhere; specs also see busted's globals.
std = "lua54"
max_line_length = 110
files["tests/spec/"] = { std = "lua54+busted" }
files["tests/**/*_spec.lua"] = { std = "lua54+busted" }
-- Policies run in the node's sandbox, where `tn` is the API table (policies/README.md).
files["policies/"] = { read_globals = { "tn" } }
files["examples/experiments/"] = { read_globals = { "tn" } }
