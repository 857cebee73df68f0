/* The memory-capped Lua allocator (see tn_lua.h). */
#include "tn_lua.h"

#include <stdlib.h>

void *tn_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    tn_lua_mem_t *m = ud;
    if (!ptr) osize = 0; /* osize then encodes the object type, not a size */
    if (nsize == 0) {
        m->used -= osize;
        free(ptr);
        return NULL;
    }
    if (nsize > osize && m->used + (nsize - osize) > m->max) return NULL;
    void *p = realloc(ptr, nsize);
    if (p) {
        m->used = m->used - osize + nsize;
        if (m->used > m->peak) m->peak = m->used;
    }
    return p;
}
