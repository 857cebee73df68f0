/* Building one policy generation: every *.lua in the policy directory is loaded in its own
 * environment and returns a module table; functions named like hook slots become hooks (a
 * hook defined by two files is an error); each module's `tests` run as self-tests. Runs on
 * any thread: nothing here touches the node. */
#include "tn_policy_int.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const HOOK_NAMES[] = {
#define TN_HOOK_NAME(name, sig) #name,
    TN_HOOKS(TN_HOOK_NAME)
#undef TN_HOOK_NAME
};

const char *tn_hook_name(tn_hook_t h)
{
    return HOOK_NAMES[h];
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted *.lua names in dir (top level only: helpers for require live in dir/lib). */
static int list_files(const char *dir, char **names, int max, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "%s: cannot open policy directory", dir);
        return -1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || e->d_name[0] == '.' || strcmp(e->d_name + l - 4, ".lua") != 0) continue;
        if (n == max) {
            snprintf(err, errlen, "%s: more than %d policy files", dir, max);
            n = -1;
            break;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n > 0) qsort(names, (size_t)n, sizeof(char *), cmpstr);
    return n;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap && n < (8u << 20)) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        } else if (n == cap) {
            break; /* 8 MiB of policy is not a policy */
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Loads path as a chunk with a fresh env; leaves its result on the stack. */
static int load_file(tn_policy_gen_t *g, const char *path, const char *chunkname, char *err,
                     size_t errlen)
{
    lua_State *L = g->L;
    size_t len;
    char *src = read_all(path, &len);
    if (!src) {
        snprintf(err, errlen, "%s: cannot read", path);
        return -1;
    }
    int rc = luaL_loadbufferx(L, src, len, chunkname, "t");
    free(src);
    if (rc != LUA_OK) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    tn_sandbox_push_env(L);
    lua_setupvalue(L, -2, 1);
    if (tn_policy_pcall(g, 0, 1, g->lim.load_budget_s) != LUA_OK) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

/* require(name): dir/lib/name.lua, loaded once per generation. */
static int policy_require(lua_State *L)
{
    tn_policy_gen_t *g = TN_GEN(L);
    const char *name = luaL_checkstring(L, 1);
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_'))
            return luaL_argerror(L, 1, "module names are letters, digits and _ (dir/lib/NAME.lua)");
    lua_getfield(L, LUA_REGISTRYINDEX, "tn.loaded");
    if (lua_getfield(L, -1, name) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    char path[1200], chunk[200], err[512];
    snprintf(path, sizeof path, "%s/lib/%s.lua", g->dir, name);
    snprintf(chunk, sizeof chunk, "@lib/%s.lua", name);
    if (load_file(g, path, chunk, err, sizeof err) != 0) return luaL_error(L, "%s", err);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, name);
    return 1;
}

/* Runs module.tests (a table of functions) in the order of their names (Lua's table order
 * differs between states), naming each failure as file: test: message. */
static int run_self_tests(tn_policy_gen_t *g, const char *file, char *err, size_t errlen)
{
    lua_State *L = g->L;
    if (lua_getfield(L, -1, "tests") == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1)) {
        snprintf(err, errlen, "%s: 'tests' must be a table of functions", file);
        lua_pop(L, 1);
        return -1;
    }
    int tests = lua_gettop(L);
    /* names = sorted keys (as strings; list entries become "#1", "#2", ...) */
    lua_newtable(L);
    int names = lua_gettop(L), n = 0;
    lua_pushnil(L);
    while (lua_next(L, tests)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, names, ++n);
    }
    if (luaL_dostring(L, "return function(t) table.sort(t, function(a, b) "
                         "if type(a) == type(b) then return a < b end "
                         "return type(a) == 'number' end) end") == LUA_OK) {
        lua_pushvalue(L, names);
        lua_pcall(L, 1, 0, 0);
    }
    lua_settop(L, names);
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, names, i);
        char name[96];
        if (lua_type(L, -1) == LUA_TNUMBER)
            snprintf(name, sizeof name, "#%lld", (long long)lua_tointeger(L, -1));
        else
            snprintf(name, sizeof name, "%s", lua_tostring(L, -1));
        lua_gettable(L, tests);
        if (!lua_isfunction(L, -1)) {
            snprintf(err, errlen, "%s: self-test %s is not a function", file, name);
            lua_settop(L, tests - 1);
            return -1;
        }
        if (tn_policy_pcall(g, 0, 0, g->lim.load_budget_s) != LUA_OK) {
            const char *msg = lua_tostring(L, -1);
            if (!msg) msg = "error";
            /* an error raised without a position still names the file */
            bool placed = strncmp(msg, file, strlen(file)) == 0 || strstr(msg, ".lua:");
            snprintf(err, errlen, "%s%s%s (self-test %s failed)", placed ? "" : file,
                     placed ? "" : ": ", msg, name);
            lua_settop(L, tests - 1);
            return -1;
        }
        g->n_tests++;
    }
    lua_settop(L, tests - 1);
    return 0;
}

static int collect_hooks(tn_policy_gen_t *g, const char *file, char *err, size_t errlen)
{
    lua_State *L = g->L;
    for (int h = 0; h < TN_HOOK__COUNT; h++) {
        int t = lua_getfield(L, -1, HOOK_NAMES[h]);
        if (t == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        if (t != LUA_TFUNCTION) {
            snprintf(err, errlen, "%s: '%s' must be a function, not a %s", file, HOOK_NAMES[h],
                     lua_typename(L, t));
            lua_pop(L, 1);
            return -1;
        }
        if (g->hook_ref[h] != LUA_NOREF) {
            snprintf(err, errlen, "%s: hook '%s' is already defined in %s", file, HOOK_NAMES[h],
                     g->hook_file[h]);
            lua_pop(L, 1);
            return -1;
        }
        g->hook_ref[h] = luaL_ref(L, LUA_REGISTRYINDEX);
        snprintf(g->hook_file[h], sizeof g->hook_file[h], "%.63s", file);
    }
    return 0;
}

tn_policy_gen_t *tn_policy_gen_build(const char *dir, const tn_policy_limits_t *lim,
                                     const void *cfg, char *err, size_t errlen)
{
    tn_policy_gen_t *g = calloc(1, sizeof(*g));
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->lim = *lim;
    g->cfg = cfg;
    snprintf(g->dir, sizeof g->dir, "%s", dir);
    for (int h = 0; h < TN_HOOK__COUNT; h++) g->hook_ref[h] = LUA_NOREF;
    g->L = tn_sandbox_new(g);
    if (!g->L) {
        snprintf(err, errlen, "cannot create a Lua state");
        free(g);
        return NULL;
    }
    lua_State *L = g->L;
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "tn.loaded");
    lua_pushcfunction(L, policy_require);
    lua_setglobal(L, "require");
    tn_policy_api_open(L, g);

    char *names[TN_POLICY_FILES_MAX];
    int n = list_files(dir, names, TN_POLICY_FILES_MAX, err, errlen);
    int rc = n < 0 ? -1 : 0;
    if (n == 0) {
        snprintf(err, errlen, "%s: no *.lua policy files", dir);
        rc = -1;
    }
    for (int i = 0; i < n; i++) {
        if (rc == 0) {
            char path[1400], chunk[1410];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            snprintf(chunk, sizeof chunk, "@%s", path);
            rc = load_file(g, path, chunk, err, errlen);
            if (rc == 0 && !lua_istable(L, -1)) {
                snprintf(err, errlen, "%s: must return a table of hooks (got %s)", path,
                         luaL_typename(L, -1));
                rc = -1;
            }
            if (rc == 0) rc = collect_hooks(g, path, err, errlen);
            if (rc == 0) rc = run_self_tests(g, path, err, errlen);
            lua_settop(L, 0);
            g->n_files++;
        }
        free(names[i]);
    }
    if (rc != 0) {
        tn_policy_gen_free(g);
        return NULL;
    }
    lua_gc(L, LUA_GCCOLLECT);
    return g;
}

void tn_policy_gen_free(tn_policy_gen_t *g)
{
    if (!g) return;
    if (g->L) lua_close(g->L);
    free(g);
}

bool tn_policy_gen_has(const tn_policy_gen_t *g, tn_hook_t h)
{
    return g && g->hook_ref[h] != LUA_NOREF;
}

void tn_policy_gen_counts(const tn_policy_gen_t *g, int *files, int *tests)
{
    *files = g ? g->n_files : 0;
    *tests = g ? g->n_tests : 0;
}

void tn_policy_gen_flush_logs(tn_policy_gen_t *g)
{
    for (int i = 0; i < g->n_logs; i++) tn_policy_glog(g, g->logs[i].level, g->logs[i].text);
    if (g->logs_dropped) {
        char m[96];
        snprintf(m, sizeof m, "%d more log lines from loading were dropped", g->logs_dropped);
        tn_policy_glog(g, 2, m);
    }
    g->n_logs = g->logs_dropped = 0;
}
