/* Internals shared by the tn_policy_*.c files (not for the rest of the core). */
#ifndef TN_POLICY_INT_H
#define TN_POLICY_INT_H

#include "tn_buf.h"
#include "tn_lua.h"
#include "tn_policy.h"

#include <lauxlib.h>
#include <lua.h>

#define TN_POLICY_FILES_MAX 64          /* *.lua files per policy directory */
#define TN_POLICY_PERSIST_MAX 32        /* tn.persist() declarations per generation */
#define TN_POLICY_LOGS_MAX 128          /* log lines queued while building off the loop */
#define TN_POLICY_ERRKINDS_MAX 128      /* distinct error kinds remembered (each logged once) */
#define TN_POLICY_TIMERS_MAX 64         /* pending tn.after() timers per generation */
#define TN_POLICY_PATTERN_STEPS 1e7     /* worst-case steps allowed for one pattern match */
#define TN_POLICY_STRING_MAX (1u << 20) /* longest string.rep result */
#define TN_POLICY_TAG_MAX 32

typedef struct {
    char key[64];
    int version;
    int table_ref;
    int init_ref;
    int migrate_ref;
} tn_persist_t;

typedef struct {
    int level;
    char text[256];
} tn_qlog_t;

typedef struct {
    int fn_ref;
    uint64_t due_ms;
} tn_ptimer_t;

struct tn_policy_gen {
    lua_State *L;
    tn_policy_limits_t lim;
    tn_lua_mem_t mem;
    /* budget of the call in progress */
    int in_call;
    uint32_t ticks;
    uint64_t call_start_ns;
    uint64_t budget_ns;
    bool budget_hit; /* stays set until the call from C returns: no Lua pcall can swallow it */
    /* hooks */
    int hook_ref[TN_HOOK__COUNT];
    char hook_file[TN_HOOK__COUNT][64];
    int traceback_ref;
    int peer_ref;
    const char *field[40]; /* interned peer field names, compared by pointer */
    tn_peer_view_t cur;
    double quality[16]; /* the current peer's quality fields, computed on the first read */
    bool quality_ok;
    bool quality_last; /* after a call: quality[] holds what that call's policy read */
    /* what was loaded */
    char dir[1024];
    int n_files, n_tests;
    const void *cfg;
    /* off-loop log queue; host == NULL while building */
    tn_policy_t *host;
    tn_qlog_t logs[TN_POLICY_LOGS_MAX];
    int n_logs, logs_dropped;
    /* persistent state */
    tn_persist_t persist[TN_POLICY_PERSIST_MAX];
    int n_persist;
    /* timers */
    tn_ptimer_t timers[TN_POLICY_TIMERS_MAX];
    int n_timers;
    /* error kinds already logged */
    uint64_t seen[TN_POLICY_ERRKINDS_MAX];
    int n_seen;
    void *exp; /* message types it registered (tn_experiment.c), owned by L */
};

/* A persisted state exported from a generation (or read from the store). */
typedef struct tn_state_blob {
    struct tn_state_blob *next;
    char key[64];
    int version;
    size_t len;
    uint8_t data[];
} tn_state_blob_t;

typedef struct tn_reload_waiter {
    struct tn_reload_waiter *next;
    void (*done)(void *ud, bool ok, const char *msg);
    void *ud;
} tn_reload_waiter_t;

struct tn_policy {
    tn_node_t *node;
    uv_loop_t *loop;
    char dir[1024];
    tn_policy_limits_t lim;
    tn_policy_gen_t *gen; /* NULL: C defaults */
    uint64_t generation;
    uint64_t loaded_at_ms;
    bool breaker_open;
    uint32_t consecutive_errors;
    tn_hook_stats_t stats[TN_HOOK__COUNT];
    char last_error[512];
    /* reload machinery */
    uv_fs_event_t watch;
    bool watching;
    uv_timer_t debounce, tick, timers;
    uv_work_t work;
    bool building, rebuild_pending, stopping;
    tn_policy_gen_t *built;
    char build_err[512];
    char build_why[64];
    tn_reload_waiter_t *waiting, *next_waiting;
    tn_state_blob_t *saved; /* state from the store, imported by the first generation */
    uint64_t reloads_ok, reloads_rejected;
    int n_open_handles;
    bool watch_init;
    FILE *record; /* policy_record: one JSON line per hook decision */
};

#define TN_GEN(L) (*(tn_policy_gen_t **)lua_getextraspace(L))

/* tn_policy_sandbox.c */
lua_State *tn_sandbox_new(tn_policy_gen_t *g);
/* Starts/ends the CPU budget of a call made from C. */
void tn_sandbox_budget(tn_policy_gen_t *g, double seconds);
void tn_sandbox_budget_end(tn_policy_gen_t *g);
/* Pushes a fresh environment table for one policy file (globals isolated per file). */
void tn_sandbox_push_env(lua_State *L);

/* tn_policy_host.c: (re)starts the timer for the earliest tn.after() */
void tn_policy_timers_arm(tn_policy_t *p);

/* tn_policy_api.c */
void tn_policy_api_open(lua_State *L, tn_policy_gen_t *g);
void tn_policy_peer_push(tn_policy_gen_t *g, const tn_peer_view_t *v);
void tn_policy_peer_clear(tn_policy_gen_t *g);
void tn_policy_glog(tn_policy_gen_t *g, int level, const char *text);
/* pcall with the traceback handler and a budget; error message left on the stack. */
int tn_policy_pcall(tn_policy_gen_t *g, int nargs, int nres, double budget_s);

/* tn_policy_state.c */
int tn_state_serialize(lua_State *L, int idx, tn_buf_t *out, size_t max, char *err, size_t errlen);
int tn_state_deserialize(lua_State *L, const uint8_t *p, size_t n);
tn_state_blob_t *tn_state_export(tn_policy_gen_t *g);
void tn_state_import(tn_policy_gen_t *g, const tn_state_blob_t *blobs);
void tn_state_free(tn_state_blob_t *b);

/* tn_policy_call.c */
/* Begins a hook call: false when the hook must not be called (no generation, breaker open,
 * hook not defined); then the function is on the stack, push the arguments and call
 * tn_hook_run. */
bool tn_hook_begin(tn_policy_t *p, tn_hook_t h, lua_State **L, int *base);
/* The same with the function to call given by a registry ref (accounted under hook h): a
 * per-type message handler, say. */
bool tn_hook_begin_ref(tn_policy_t *p, tn_hook_t h, int ref, lua_State **L, int *base);
/* Runs it; false on error (accounted: error and fallback counters, one log line per error
 * kind, breaker). */
bool tn_hook_run(tn_policy_t *p, tn_hook_t h, int nargs, int nres);
/* A result of the wrong type or range: accounted like an error (the C default applies). */
void tn_hook_bad_result(tn_policy_t *p, tn_hook_t h, const char *what);
void tn_hook_end(tn_policy_t *p, lua_State *L, int base);
void tn_hook_fallback(tn_policy_t *p, tn_hook_t h);
/* A JSON string literal of s (quoted, escaped) into out; truncated to fit. */
void tn_json_str(char *out, size_t n, const char *s);
void tn_hook_record(tn_policy_t *p, tn_hook_t h, const tn_peer_view_t *v, const char *args_json,
                    const char *result_json);
/* Logs msg once per generation and kind (hash of msg); returns true when it logged. */
bool tn_policy_log_once(tn_policy_gen_t *g, int level, const char *msg);

#endif
