/* SQLite store (see tn_store.h): migrations, integrity check, batched writes on the
 * threadpool. The connection is used by one thread at a time: the worker while a batch is in
 * flight, the loop thread otherwise. */
#include "tn_store.h"

#include "tn_log.h"
#include "tn_metrics.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Migration N takes the schema from version N-1 to N. Never edit a shipped entry: append. */
static const char *MIGRATIONS[] = {
    /* 1: known peers */
    "CREATE TABLE peers ("
    "  addr TEXT PRIMARY KEY,"       /* ip:port a node can be dialed at */
    "  node_id TEXT,"                /* hex Ed25519 key last seen there */
    "  source TEXT NOT NULL,"        /* config, inbound, outbound, exchange, api */
    "  first_seen INTEGER NOT NULL," /* unix ms */
    "  last_seen INTEGER NOT NULL,"
    "  last_success INTEGER NOT NULL DEFAULT 0,"
    "  successes INTEGER NOT NULL DEFAULT 0,"
    "  failures INTEGER NOT NULL DEFAULT 0);",
    /* 2: bans and persistent policy state */
    "CREATE TABLE bans ("
    "  ip TEXT PRIMARY KEY,"
    "  until_ms INTEGER NOT NULL," /* unix ms */
    "  reason TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  count INTEGER NOT NULL DEFAULT 1);" /* bans of this IP so far (escalation) */
    "CREATE TABLE policy_state ("
    "  key TEXT PRIMARY KEY," /* tn.persist key */
    "  version INTEGER NOT NULL,"
    "  data BLOB NOT NULL," /* tn_policy_state.c encoding */
    "  saved_at INTEGER NOT NULL);",
    /* 3: peers added by the operator (`addnode`): dialed as persistent peers at every start */
    "CREATE TABLE added_nodes ("
    "  addr TEXT PRIMARY KEY," /* ip:port */
    "  added_ms INTEGER NOT NULL);",
    /* 4: the chain (every valid block, branches included), the mempool, equivocations */
    "CREATE TABLE blocks ("
    "  id TEXT PRIMARY KEY,"         /* hex block id */
    "  height INTEGER NOT NULL,"
    "  slot INTEGER NOT NULL,"
    "  raw BLOB NOT NULL);"          /* tn_tx.h block encoding */
    "CREATE INDEX blocks_height ON blocks(height);"
    "CREATE TABLE mempool ("
    "  id TEXT PRIMARY KEY,"
    "  expiry INTEGER NOT NULL,"     /* unix s */
    "  raw BLOB NOT NULL);"
    "CREATE TABLE equivocations ("
    "  producer TEXT NOT NULL,"
    "  slot INTEGER NOT NULL,"
    "  block_a TEXT NOT NULL,"
    "  block_b TEXT NOT NULL,"
    "  seen_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (producer, slot, block_b));",
    /* 5: the address table (tn_addrman.h) over the known peers, and peer quality per node */
    "ALTER TABLE peers ADD COLUMN src TEXT NOT NULL DEFAULT '';" /* IP of the telling peer */
    "ALTER TABLE peers ADD COLUMN last_try INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE peers ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;" /* failed in a row */
    "ALTER TABLE peers ADD COLUMN tried INTEGER NOT NULL DEFAULT 0;"    /* a dial worked */
    "ALTER TABLE peers ADD COLUMN anchor INTEGER NOT NULL DEFAULT 0;"   /* outbound at exit */
    "ALTER TABLE peers ADD COLUMN id_verified INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE peer_quality ("
    "  node_id TEXT PRIMARY KEY,"
    "  addr TEXT NOT NULL,"
    "  dials INTEGER NOT NULL, dial_failures INTEGER NOT NULL,"
    "  sessions INTEGER NOT NULL, disconnects INTEGER NOT NULL,"
    "  connected_ms INTEGER NOT NULL,"
    "  first_seen INTEGER NOT NULL, updated INTEGER NOT NULL," /* unix ms */
    "  rtt_ms REAL NOT NULL,"
    "  pings INTEGER NOT NULL, late INTEGER NOT NULL, missed INTEGER NOT NULL,"
    "  blocks INTEGER NOT NULL, dups INTEGER NOT NULL, invalid INTEGER NOT NULL);",
};

typedef struct {
    char type;
    int64_t i;
    double d;
    char *t; /* text or blob bytes */
    size_t n;
} val_t;

typedef struct op {
    struct op *next;
    const char *sql;
    int n;
    val_t v[TN_STORE_MAX_PARAMS];
} op_t;

typedef struct {
    const char *sql;
    sqlite3_stmt *stmt;
} cached_t;

#define STMT_CACHE 32

struct tn_store {
    sqlite3 *db;
    uv_loop_t *loop;
    uv_timer_t timer;
    uv_work_t work;
    op_t *head, **tail; /* queued */
    op_t *batch;        /* in flight */
    int queued;
    int inflight;
    int batch_rc;
    char batch_err[256];
    uint64_t committed;
    cached_t cache[STMT_CACHE];
    uint64_t flush_ms;
    int closing;
    tn_metric_t *m_writes, *m_batches, *m_errors;
    const char *fault_sql; /* test_fault: statement after whose Nth execution we die */
    unsigned fault_countdown;
};

static void free_ops(op_t *o)
{
    while (o) {
        op_t *n = o->next;
        for (int i = 0; i < o->n; i++) free(o->v[i].t);
        free(o);
        o = n;
    }
}

static sqlite3_stmt *stmt_for(tn_store_t *st, const char *sql)
{
    for (int i = 0; i < STMT_CACHE; i++) {
        if (st->cache[i].sql == sql) return st->cache[i].stmt;
        if (!st->cache[i].sql) {
            if (sqlite3_prepare_v2(st->db, sql, -1, &st->cache[i].stmt, NULL) != SQLITE_OK)
                return NULL;
            st->cache[i].sql = sql;
            return st->cache[i].stmt;
        }
    }
    return NULL; /* more distinct statements than STMT_CACHE: a programming error */
}

/* Runs ops in one transaction; returns 0 or the SQLite error code, message in err. */
static int run_batch(tn_store_t *st, op_t *ops, char *err, size_t errlen)
{
    int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    for (op_t *o = ops; o && rc == SQLITE_OK; o = o->next) {
        sqlite3_stmt *s = stmt_for(st, o->sql);
        if (!s) {
            rc = SQLITE_ERROR;
            break;
        }
        for (int i = 0; i < o->n; i++) {
            val_t *v = &o->v[i];
            if (v->type == 'i')
                sqlite3_bind_int64(s, i + 1, v->i);
            else if (v->type == 'd')
                sqlite3_bind_double(s, i + 1, v->d);
            else if (v->type == 'b')
                sqlite3_bind_blob(s, i + 1, v->t ? v->t : "", (int)v->n, SQLITE_STATIC);
            else if (v->t)
                sqlite3_bind_text(s, i + 1, v->t, -1, SQLITE_STATIC);
            else
                sqlite3_bind_null(s, i + 1);
        }
        rc = sqlite3_step(s);
        if (rc == SQLITE_DONE || rc == SQLITE_ROW) rc = SQLITE_OK;
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        if (st->fault_sql == o->sql && st->fault_countdown && --st->fault_countdown == 0)
            raise(SIGKILL); /* test_fault: die mid-transaction, before COMMIT */
    }
    if (rc == SQLITE_OK) rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(st->db));
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

static void do_work(uv_work_t *w)
{
    tn_store_t *st = w->data;
    st->batch_rc = run_batch(st, st->batch, st->batch_err, sizeof st->batch_err);
}

static void schedule(tn_store_t *st);

static void after_work(uv_work_t *w, int status)
{
    tn_store_t *st = w->data;
    int n = 0;
    for (op_t *o = st->batch; o; o = o->next) n++;
    if (status == 0 && st->batch_rc == SQLITE_OK) {
        st->committed += (uint64_t)n;
        tn_metric_add(st->m_writes, n);
        tn_metric_inc(st->m_batches);
    } else {
        tn_metric_inc(st->m_errors);
        tn_error("Store write of %d records failed: %s", n, st->batch_err);
    }
    free_ops(st->batch);
    st->batch = NULL;
    st->inflight = 0;
    if (st->head && !st->closing) schedule(st);
}

static void start_batch(tn_store_t *st)
{
    if (st->inflight || !st->head) return;
    st->batch = st->head;
    st->head = NULL;
    st->tail = &st->head;
    st->queued = 0;
    st->inflight = 1;
    st->work.data = st;
    if (uv_queue_work(st->loop, &st->work, do_work, after_work) != 0) {
        /* No threadpool: commit here rather than lose the writes. */
        do_work(&st->work);
        after_work(&st->work, 0);
    }
}

static void on_timer(uv_timer_t *t)
{
    start_batch(t->data);
}

static void schedule(tn_store_t *st)
{
    if (!uv_is_active((uv_handle_t *)&st->timer))
        uv_timer_start(&st->timer, on_timer, st->flush_ms, 0);
}

int tn_store_exec(tn_store_t *st, const char *sql, const char *fmt, ...)
{
    op_t *o = calloc(1, sizeof(*o));
    if (!o) return TN_ENOMEM;
    o->sql = sql;
    va_list ap;
    va_start(ap, fmt);
    for (; *fmt && o->n < TN_STORE_MAX_PARAMS; fmt++) {
        val_t *v = &o->v[o->n++];
        v->type = *fmt;
        if (*fmt == 'i') {
            v->i = va_arg(ap, int64_t);
        } else if (*fmt == 'd') {
            v->d = va_arg(ap, double);
        } else if (*fmt == 'b') {
            const void *p = va_arg(ap, const void *);
            v->n = va_arg(ap, size_t);
            if (v->n && !(v->t = malloc(v->n))) {
                va_end(ap);
                free_ops(o);
                return TN_ENOMEM;
            }
            if (v->n) memcpy(v->t, p, v->n);
        } else {
            const char *s = va_arg(ap, const char *);
            if (s && !(v->t = strdup(s))) {
                va_end(ap);
                free_ops(o);
                return TN_ENOMEM;
            }
        }
    }
    va_end(ap);
    *st->tail = o;
    st->tail = &o->next;
    if (++st->queued == TN_STORE_QUEUE_MAX) {
        tn_warn("Store queue reached %d writes: the disk is not keeping up", TN_STORE_QUEUE_MAX);
        if (!st->inflight) return tn_store_flush_sync(st);
    }
    schedule(st);
    return TN_OK;
}

int tn_store_flush_sync(tn_store_t *st)
{
    /* A batch in flight owns the connection (and must land first to keep write order). */
    if (st->inflight) return TN_EALREADY;
    if (!st->head) return TN_OK;
    op_t *ops = st->head;
    st->head = NULL;
    st->tail = &st->head;
    st->queued = 0;
    char err[256];
    int n = 0;
    for (op_t *o = ops; o; o = o->next) n++;
    int rc = run_batch(st, ops, err, sizeof err);
    free_ops(ops);
    if (rc != SQLITE_OK) {
        tn_metric_inc(st->m_errors);
        tn_error("Store write of %d records failed: %s", n, err);
        return TN_EIO;
    }
    st->committed += (uint64_t)n;
    tn_metric_add(st->m_writes, n);
    tn_metric_inc(st->m_batches);
    return TN_OK;
}

int tn_store_query(tn_store_t *st, const char *sql, int (*row)(void *ud, sqlite3_stmt *stmt),
                   void *ud)
{
    if (st->inflight) return TN_EALREADY;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) return TN_EIO;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if (row(ud, s)) break;
    sqlite3_finalize(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? TN_OK : TN_EIO;
}

uint64_t tn_store_committed(const tn_store_t *st)
{
    return st->committed;
}

void tn_store_fault(tn_store_t *st, const char *sql, unsigned after)
{
    st->fault_sql = sql;
    st->fault_countdown = after;
}

static int single_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) return -1;
    int rc = sqlite3_step(s) == SQLITE_ROW ? 0 : -1;
    if (rc == 0) *out = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return rc;
}

static int migrate(sqlite3 *db, char *err, size_t errlen)
{
    int64_t v = 0;
    if (single_int(db, "PRAGMA user_version", &v)) {
        snprintf(err, errlen, "cannot read schema version: %s", sqlite3_errmsg(db));
        return TN_EIO;
    }
    if (v > (int64_t)TN_ARRAY_LEN(MIGRATIONS)) {
        snprintf(err, errlen, "store has schema %lld, newer than this timenetd knows (%d)",
                 (long long)v, (int)TN_ARRAY_LEN(MIGRATIONS));
        return TN_EINVAL;
    }
    for (; v < (int64_t)TN_ARRAY_LEN(MIGRATIONS); v++) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)v + 1);
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db, MIGRATIONS[v], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            snprintf(err, errlen, "migration to schema %lld failed: %s", (long long)v + 1,
                     sqlite3_errmsg(db));
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return TN_EIO;
        }
    }
    return TN_OK;
}

static int quick_check(sqlite3 *db, char *err, size_t errlen)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "integrity check failed to run: %s", sqlite3_errmsg(db));
        return TN_EIO;
    }
    int ok =
        sqlite3_step(s) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(s, 0), "ok") == 0;
    if (!ok)
        snprintf(err, errlen, "integrity check failed: %s",
                 sqlite3_column_text(s, 0) ? (const char *)sqlite3_column_text(s, 0)
                                           : sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return ok ? TN_OK : TN_EIO;
}

int tn_store_open(tn_store_t **out, uv_loop_t *loop, const char *path, double flush_interval_s,
                  char *err, size_t errlen)
{
    tn_store_t *st = calloc(1, sizeof(*st));
    if (!st) return TN_ENOMEM;
    st->loop = loop;
    st->tail = &st->head;
    st->flush_ms = (uint64_t)(flush_interval_s * 1000.0);
    if (st->flush_ms == 0) st->flush_ms = 1;
    int rc = sqlite3_open_v2(
        path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, st->db ? sqlite3_errmsg(st->db) : "cannot open");
        sqlite3_close(st->db);
        free(st);
        return TN_EIO;
    }
    sqlite3_busy_timeout(st->db, 5000);
    int64_t dummy;
    char why[200] = "";
    if (sqlite3_exec(st->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(st->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK ||
        single_int(st->db, "PRAGMA user_version", &dummy) != 0) {
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(st->db));
        rc = TN_EIO;
    } else if ((rc = quick_check(st->db, why, sizeof why)) == TN_OK) {
        rc = migrate(st->db, why, sizeof why);
    }
    if (rc != TN_OK) {
        snprintf(err, errlen, "%s: %s", path, why);
        sqlite3_close(st->db);
        free(st);
        return rc;
    }
    uv_timer_init(loop, &st->timer);
    st->timer.data = st;
    uv_unref((uv_handle_t *)&st->timer);
    st->m_writes = tn_metric_counter("tn_store_writes_total", "Records committed to the store");
    st->m_batches = tn_metric_counter("tn_store_batches_total", "Store transactions committed");
    st->m_errors = tn_metric_counter("tn_store_errors_total", "Store transactions that failed");
    *out = st;
    return TN_OK;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void tn_store_close(tn_store_t *st)
{
    if (!st) return;
    st->closing = 1;
    tn_store_flush_sync(st);
    for (int i = 0; i < STMT_CACHE; i++) sqlite3_finalize(st->cache[i].stmt);
    sqlite3_close(st->db);
    uv_close((uv_handle_t *)&st->timer, on_timer_closed);
}
