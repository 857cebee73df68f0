/* The node's persistent store: one SQLite file in WAL mode (synchronous=NORMAL: a crash
 * loses no committed transaction and never corrupts the file), schema-versioned with
 * migrations and checked at open. Writes are queued on the loop and committed in batches on
 * libuv's threadpool so the loop never waits for the disk. */
#ifndef TN_STORE_H
#define TN_STORE_H

#include "tn_common.h"

#include <sqlite3.h>
#include <uv.h>

#define TN_STORE_QUEUE_MAX 65536 /* queued writes before a warning and a synchronous commit */
#define TN_STORE_MAX_PARAMS 16

typedef struct tn_store tn_store_t;

/* Opens (creating and migrating) the store at path. Errors are written to err. */
int tn_store_open(tn_store_t **out, uv_loop_t *loop, const char *path, double flush_interval_s,
                  char *err, size_t errlen);
/* Commits everything queued (waiting for a batch in flight) and closes. */
void tn_store_close(tn_store_t *st);

/* Queues one write. `sql` must be a string literal (its address keys the statement cache).
 * fmt has one letter per parameter: 'i' int64, 't' text (NULL = SQL NULL), 'd' double,
 * 'b' blob (two arguments: const void *, size_t). */
int tn_store_exec(tn_store_t *st, const char *sql, const char *fmt, ...);
/* Commits everything queued now, on the calling thread. Only when no batch is in flight
 * (start-up, after the loop has stopped): TN_EALREADY otherwise. */
int tn_store_flush_sync(tn_store_t *st);
/* Synchronous read, same rule as tn_store_flush_sync; row returns non-zero to stop. */
int tn_store_query(tn_store_t *st, const char *sql, int (*row)(void *ud, sqlite3_stmt *stmt),
                   void *ud);
/* Test only (config test_fault): the process kills itself with SIGKILL right after the
 * `after`-th execution of `sql` (same literal as given to tn_store_exec), inside the batch's
 * transaction, before it commits. */
void tn_store_fault(tn_store_t *st, const char *sql, unsigned after);
/* Writes committed since open, and batches, for metrics and tests. */
uint64_t tn_store_committed(const tn_store_t *st);

#endif
