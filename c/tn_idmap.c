/* Id-keyed hash map (see tn_idmap.h). */
#include "tn_idmap.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>

static size_t slot_of(const tn_idmap_t *m, const uint8_t key[32])
{
    uint8_t h[8];
    crypto_shorthash(h, key, 32, m->hkey);
    uint64_t v;
    memcpy(&v, h, 8);
    return (size_t)v & (m->cap - 1);
}

int tn_idmap_init(tn_idmap_t *m, size_t initial)
{
    size_t cap = 16;
    while (cap < 2 * initial) cap *= 2;
    m->s = calloc(cap, sizeof(tn_idmap_slot_t));
    if (!m->s) return TN_ENOMEM;
    m->cap = cap;
    m->n = 0;
    randombytes_buf(m->hkey, sizeof m->hkey);
    return TN_OK;
}

void tn_idmap_free(tn_idmap_t *m)
{
    free(m->s);
    m->s = NULL;
    m->cap = m->n = 0;
}

void *tn_idmap_get(const tn_idmap_t *m, const uint8_t key[32])
{
    for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
        const tn_idmap_slot_t *s = &m->s[i];
        if (!s->val) return NULL;
        if (memcmp(s->key, key, 32) == 0) return s->val;
    }
}

static int grow(tn_idmap_t *m)
{
    tn_idmap_t bigger = *m;
    bigger.cap = m->cap * 2;
    bigger.n = 0;
    bigger.s = calloc(bigger.cap, sizeof(tn_idmap_slot_t));
    if (!bigger.s) return TN_ENOMEM;
    for (size_t i = 0; i < m->cap; i++)
        if (m->s[i].val) tn_idmap_put(&bigger, m->s[i].key, m->s[i].val);
    free(m->s);
    *m = bigger;
    return TN_OK;
}

int tn_idmap_put(tn_idmap_t *m, const uint8_t key[32], void *val)
{
    if (2 * (m->n + 1) > m->cap && grow(m) != TN_OK) return TN_ENOMEM; /* load <= 1/2 */
    for (size_t i = slot_of(m, key);; i = (i + 1) & (m->cap - 1)) {
        tn_idmap_slot_t *s = &m->s[i];
        if (!s->val) {
            memcpy(s->key, key, 32);
            s->val = val;
            m->n++;
            return TN_OK;
        }
        if (memcmp(s->key, key, 32) == 0) {
            s->val = val;
            return TN_OK;
        }
    }
}

void *tn_idmap_del(tn_idmap_t *m, const uint8_t key[32])
{
    size_t mask = m->cap - 1, i = slot_of(m, key);
    while (m->s[i].val && memcmp(m->s[i].key, key, 32) != 0) i = (i + 1) & mask;
    if (!m->s[i].val) return NULL;
    void *val = m->s[i].val;
    /* Backward shift: pull later members of the probe run into the hole so lookups never
     * stop early at it. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->s[j].val; j = (j + 1) & mask) {
        size_t home = slot_of(m, m->s[j].key);
        /* j may move to hole if its home is not cyclically in (hole, j] */
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            m->s[hole] = m->s[j];
            hole = j;
        }
    }
    m->s[hole].val = NULL;
    m->n--;
    return val;
}
