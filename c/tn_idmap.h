/* A hash map from 32-byte ids (transaction and block hashes) to pointers: open addressing
 * with linear probing and backward-shift deletion, slots chosen by a keyed hash so peers
 * cannot grind ids into one probe chain. Grows by doubling; the caller bounds its size. */
#ifndef TN_IDMAP_H
#define TN_IDMAP_H

#include "tn_common.h"

typedef struct {
    uint8_t key[32];
    void *val; /* NULL marks an empty slot: values are never NULL */
} tn_idmap_slot_t;

typedef struct {
    tn_idmap_slot_t *s;
    size_t cap; /* power of two */
    size_t n;
    uint8_t hkey[16];
} tn_idmap_t;

int tn_idmap_init(tn_idmap_t *m, size_t initial);
void tn_idmap_free(tn_idmap_t *m);
void *tn_idmap_get(const tn_idmap_t *m, const uint8_t key[32]);
/* Inserts or replaces; val must not be NULL. */
int tn_idmap_put(tn_idmap_t *m, const uint8_t key[32], void *val);
/* Removes and returns the value (NULL when absent). */
void *tn_idmap_del(tn_idmap_t *m, const uint8_t key[32]);

#endif
