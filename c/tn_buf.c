/* Bounded growable buffers (see tn_buf.h). */
#include "tn_buf.h"

#include <stdlib.h>

void tn_buf_init(tn_buf_t *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void tn_buf_free(tn_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->off = b->cap = 0;
}

int tn_buf_reserve(tn_buf_t *b, size_t n)
{
    if (n <= b->cap - b->len) return TN_OK; /* not len + n: that can wrap */
    if (b->off > 0) {
        tn_buf_compact(b);
        if (n <= b->cap - b->len) return TN_OK;
    }
    size_t need = b->len + n;
    if (need > b->max || need < n) return TN_ENOMEM;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    if (cap > b->max) cap = b->max;
    uint8_t *p = realloc(b->p, cap);
    if (!p) return TN_ENOMEM;
    b->p = p;
    b->cap = cap;
    return TN_OK;
}

int tn_buf_append(tn_buf_t *b, const void *p, size_t n)
{
    int rc = tn_buf_reserve(b, n);
    if (rc) return rc;
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    return TN_OK;
}

void tn_buf_compact(tn_buf_t *b)
{
    if (b->off == 0) return;
    size_t left = b->len - b->off;
    if (left == 0) {
        tn_buf_free(b);
        return;
    }
    memmove(b->p, b->p + b->off, left);
    b->len = left;
    b->off = 0;
}

uint8_t *tn_buf_take(tn_buf_t *b, size_t *len)
{
    uint8_t *p = b->p;
    *len = b->len;
    b->p = NULL;
    b->len = b->off = b->cap = 0;
    return p;
}
