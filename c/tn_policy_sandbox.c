/* The policy sandbox, whole: a memory-capped allocator, a count hook that stays installed
 * (coroutines inherit it in Lua 5.4) and enforces each call's CPU budget, and the allowlist
 * of libraries with the few functions that could escape the budget wrapped: pattern
 * matching (backtracks inside C, where no hook runs), string.rep, setmetatable (__gc would
 * run outside any call), collectgarbage, load (text only, sandboxed env). */
#include "tn_policy_int.h"

#include <lualib.h>
#include <stdlib.h>

#define HOOK_EVERY 1000 /* VM instructions between budget checks */

static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    tn_policy_gen_t *g = TN_GEN(L);
    if (!g->in_call) return;
    /* The clock is read from the second check on: calls shorter than HOOK_EVERY
     * instructions never pay for it. */
    if (g->ticks++ == 0) {
        g->call_start_ns = uv_hrtime();
        return;
    }
    if (g->budget_hit || uv_hrtime() - g->call_start_ns > g->budget_ns) {
        g->budget_hit = true;
        luaL_where(L, 0);
        lua_pushfstring(L, "policy call exceeded its CPU budget (%d ms)",
                        (int)(g->budget_ns / 1000000));
        lua_concat(L, 2);
        lua_error(L);
    }
}

void tn_sandbox_budget(tn_policy_gen_t *g, double seconds)
{
    g->in_call = 1;
    g->budget_hit = false;
    g->ticks = 0;
    g->budget_ns = (uint64_t)(seconds * 1e9);
}

void tn_sandbox_budget_end(tn_policy_gen_t *g)
{
    g->in_call = 0;
}

/* ---- pattern guard ---- */

/* Upper bound of the steps a Lua pattern match can take on a subject of n bytes: each
 * backtracking quantifier (*, +, -) multiplies by n+1, '?' by 2, and an unanchored pattern
 * is tried at n+1 positions. Conservative by design. */
static double pattern_cost(const char *p, size_t plen, size_t n)
{
    double cost = 1.0;
    size_t i = 0;
    bool anchored = plen > 0 && p[0] == '^';
    if (anchored) i = 1;
    while (i < plen) {
        size_t len = 1;
        char c = p[i];
        if (c == '(' || c == ')') {
            i++;
            continue;
        }
        if (c == '%') {
            if (i + 1 < plen && p[i + 1] == 'b') {
                i += 4;
                continue;
            }
            if (i + 1 < plen && p[i + 1] == 'f') {
                i += 2;
                c = '['; /* a frontier is followed by a set */
                if (i >= plen) break;
            } else {
                len = 2;
            }
        }
        if (c == '[') {
            size_t j = i + 1;
            if (j < plen && p[j] == '^') j++;
            if (j < plen && p[j] == ']') j++;
            while (j < plen && p[j] != ']') j += p[j] == '%' ? 2 : 1;
            len = j - i + 1;
        }
        i += len;
        if (i < plen && (p[i] == '*' || p[i] == '+' || p[i] == '-')) {
            cost *= (double)n + 1;
            i++;
        } else if (i < plen && p[i] == '?') {
            cost *= 2;
            i++;
        }
    }
    return anchored ? cost : cost * ((double)n + 1);
}

static int guarded(lua_State *L)
{
    size_t n, plen;
    luaL_checklstring(L, 1, &n);
    const char *p = luaL_checklstring(L, 2, &plen);
    bool plain = lua_toboolean(L, lua_upvalueindex(2)) && lua_toboolean(L, 4);
    if (!plain && pattern_cost(p, plen, n) > TN_POLICY_PATTERN_STEPS)
        return luaL_error(L,
                          "pattern too complex for a subject of %d bytes (worst case above "
                          "%d steps)",
                          (int)n, (int)TN_POLICY_PATTERN_STEPS);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int guarded_rep(lua_State *L)
{
    size_t l, lsep = 0;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (n > 0 && ((double)l + (double)lsep) * (double)n > TN_POLICY_STRING_MAX)
        return luaL_error(L, "string.rep result above %d bytes", (int)TN_POLICY_STRING_MAX);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* pcall, xpcall and coroutine.resume catch errors: once the budget is spent they re-raise,
 * or `while true do pcall(spin) end` would outlive any budget. */
static int rethrowing(lua_State *L)
{
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    if (TN_GEN(L)->budget_hit) return luaL_error(L, "policy call exceeded its CPU budget");
    return lua_gettop(L);
}

static int safe_setmetatable(lua_State *L)
{
    if (lua_istable(L, 2) && lua_getfield(L, 2, "__gc") != LUA_TNIL)
        return luaL_error(L, "__gc metamethods are not allowed in policies");
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

static int safe_collectgarbage(lua_State *L)
{
    const char *opt = luaL_optstring(L, 1, "collect");
    if (strcmp(opt, "count") && strcmp(opt, "collect") && strcmp(opt, "step") &&
        strcmp(opt, "isrunning"))
        return luaL_error(L, "collectgarbage('%s') is not allowed in policies", opt);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* load(chunk [, name [, mode [, env]]]): text only, environment = a fresh sandbox env
 * unless one is given. */
static int safe_load(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "=(load)");
    if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    if (!lua_isnoneornil(L, 4))
        lua_pushvalue(L, 4);
    else
        tn_sandbox_push_env(L);
    lua_setupvalue(L, -2, 1);
    return 1;
}

static void wrap(lua_State *L, const char *lib, const char *name, lua_CFunction f, int extra)
{
    lua_getglobal(L, lib);
    lua_getfield(L, -1, name);
    if (extra >= 0) {
        lua_pushboolean(L, extra);
        lua_pushcclosure(L, f, 2);
    } else {
        lua_pushcclosure(L, f, 1);
    }
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

static void drop(lua_State *L, const char *lib, const char *const *names)
{
    lua_getglobal(L, lib);
    for (; *names; names++) {
        lua_pushnil(L);
        lua_setfield(L, -2, *names);
    }
    lua_pop(L, 1);
}

/* The base environment every policy file's env falls back to, kept in the registry. */
static const char BASE_ENV_KEY[] = "tn.base_env";

void tn_sandbox_push_env(lua_State *L)
{
    lua_newtable(L);
    lua_newtable(L);
    lua_getfield(L, LUA_REGISTRYINDEX, BASE_ENV_KEY);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

lua_State *tn_sandbox_new(tn_policy_gen_t *g)
{
    g->mem.max = g->lim.memory_max;
    lua_State *L = lua_newstate(tn_lua_alloc, &g->mem);
    if (!L) return NULL;
    TN_GEN(L) = g;
    lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
    static const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
        {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
        {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, luaopen_coroutine},
        {LUA_OSLIBNAME, luaopen_os},     {NULL, NULL}};
    for (const luaL_Reg *l = libs; l->func; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    static const char *const no_os[] = {"execute", "exit",      "getenv", "remove", "rename",
                                        "tmpname", "setlocale", "date",   NULL};
    drop(L, "os", no_os);
    static const char *const no_str[] = {"dump", NULL};
    drop(L, "string", no_str);
    static const char *const no_base[] = {"dofile", "loadfile", "require", "print", NULL};
    drop(L, LUA_GNAME, no_base);
    wrap(L, "string", "find", guarded, 1);
    wrap(L, "string", "match", guarded, 0);
    wrap(L, "string", "gmatch", guarded, 0);
    wrap(L, "string", "gsub", guarded, 0);
    wrap(L, "string", "rep", guarded_rep, -1);
    wrap(L, LUA_GNAME, "setmetatable", safe_setmetatable, -1);
    wrap(L, LUA_GNAME, "pcall", rethrowing, -1);
    wrap(L, LUA_GNAME, "xpcall", rethrowing, -1);
    wrap(L, "coroutine", "resume", rethrowing, -1);
    wrap(L, LUA_GNAME, "collectgarbage", safe_collectgarbage, -1);
    lua_pushcfunction(L, safe_load);
    lua_setglobal(L, "load");
    /* Strings share one metatable: hide it so a policy cannot swap string methods. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushliteral(L, "string");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    lua_pushglobaltable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, BASE_ENV_KEY);
    return L;
}
