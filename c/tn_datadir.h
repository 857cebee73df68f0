/* The data directory: created 0700 if missing, locked so a second timenetd on it refuses to
 * start, and home of the node key (0600, created on first start, never logged). */
#ifndef TN_DATADIR_H
#define TN_DATADIR_H

#include "tn_crypto.h"

#define TN_PATH_MAX 4096

typedef struct {
    char dir[TN_PATH_MAX];
    int lock_fd;
} tn_datadir_t;

/* Creates (mkdir -p) and locks dir. TN_EALREADY when another process holds the lock. */
int tn_datadir_open(tn_datadir_t *d, const char *dir, char *err, size_t errlen);
void tn_datadir_close(tn_datadir_t *d);
/* dir + "/" + name into out; TN_ETOOBIG if it does not fit. */
int tn_datadir_path(const tn_datadir_t *d, const char *name, char *out, size_t outlen);
/* Loads the node key, creating it on first start. *created tells which happened. */
int tn_identity_load(const tn_datadir_t *d, uint8_t sk[TN_ID_SK_LEN], int *created, char *err,
                     size_t errlen);

#endif
