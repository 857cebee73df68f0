/* Helpers shared by the two places the core runs Lua (config loading and the policy
 * sandbox): a memory-capped allocator. */
#ifndef TN_LUA_H
#define TN_LUA_H

#include <stddef.h>

typedef struct {
    size_t used, peak;
    size_t max; /* allocations beyond it fail: Lua raises "not enough memory" */
} tn_lua_mem_t;

/* lua_Alloc with ud = tn_lua_mem_t *. */
void *tn_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

#endif
