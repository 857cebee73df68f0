/* Node configuration: a Lua file in assignment style (`max_peers = 50`) evaluated in an
 * empty, side-effect-free environment; every assignment is checked against the key list in
 * tn_config_keys.h as it happens, so errors name file:line. */
#ifndef TN_CONFIG_H
#define TN_CONFIG_H

#include "tn_common.h"
#include "tn_config_keys.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct {
    char **v;
    int n;
} tn_strlist_t;

typedef struct {
    double *v;
    int n;
} tn_numlist_t;

typedef struct {
#define TN_CK_INT(n, d, lo, hi, doc) int64_t n;
#define TN_CK_NUM(n, d, lo, hi, doc) double n;
#define TN_CK_BOOL(n, d, doc) bool n;
#define TN_CK_STR(n, d, allowed, doc) char *n;
#define TN_CK_LIST(n, max, doc) tn_strlist_t n;
#define TN_CK_NLIST(n, max, d, doc) tn_numlist_t n;
    TN_CONFIG_KEYS(TN_CK_INT, TN_CK_NUM, TN_CK_BOOL, TN_CK_STR, TN_CK_LIST, TN_CK_NLIST)
#undef TN_CK_INT
#undef TN_CK_NUM
#undef TN_CK_BOOL
#undef TN_CK_STR
#undef TN_CK_LIST
#undef TN_CK_NLIST
    char *path; /* file it came from, NULL for built-in defaults */
} tn_config_t;

/* Fills every key with its default (node_name = host name). */
int tn_config_defaults(tn_config_t *c);
/* Loads path over the defaults. On error returns TN_EINVAL with "file:line: why" in err. */
int tn_config_load(tn_config_t *c, const char *path, char *err, size_t errlen);
void tn_config_free(tn_config_t *c);
/* Writes every key with its current value and documentation, as a loadable config file. */
void tn_config_print(const tn_config_t *c, FILE *out);
bool tn_config_has(const tn_strlist_t *l, const char *s);
/* Pushes a read-only Lua table of every key's value (the policy API's tn.config); reading
 * a key that does not exist is an error, not nil. */
struct lua_State;
void tn_config_push(struct lua_State *L, const tn_config_t *c);
/* Keys one by one (config reload, docs): count, name, whether a new value takes effect on
 * `config_reload` without a restart (the list is in tn_config.c), equality of one key in two
 * configs, and swapping one key's value between two configs (ownership goes with it). */
int tn_config_nkeys(void);
const char *tn_config_key_name(int i);
bool tn_config_key_live(const char *name);
bool tn_config_key_equal(const tn_config_t *a, const tn_config_t *b, int i);
void tn_config_key_swap(tn_config_t *a, tn_config_t *b, int i);
/* Milliseconds of a duration key, at least 1. */
static inline uint64_t tn_config_ms(double seconds)
{
    double ms = seconds * 1000.0;
    return ms < 1.0 ? 1 : (uint64_t)ms;
}

#endif
