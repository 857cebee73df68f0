/* Fuzz target `store`: the bans table read back at start-up (tn_bans_load and its row
 * decoder) from a store holding whatever rows the input describes — as a corrupted or
 * hand-edited data dir can: NULL, blob or integer IPs (SQLite lets a TEXT PRIMARY KEY hold
 * NULL), any text, any numbers. The store is a real tn_store on ":memory:" (schema and
 * migrations as on disk). Persisted policy state blobs are the `state` target.
 *   rows: kind:u8 (ip as 0 text, 1 NULL, 2 blob, 3 integer), ip_len:u8, ip bytes,
 *         until_ms:u64, reason_len:u8, reason bytes, count:u32 */
#include "fz_common.h"
#include "tn_node.h"
#include "tn_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROWS_MAX 64

static uv_loop_t *loop(void)
{
    static uv_loop_t l;
    static bool ready;
    if (!ready) {
        if (uv_loop_init(&l)) abort();
        ready = true;
    }
    return &l;
}

static char *cstr(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, p, n);
    s[n] = 0;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192) return 0;
    tn_store_t *st;
    char err[256];
    if (tn_store_open(&st, loop(), ":memory:", 1.0, err, sizeof err) != TN_OK) {
        fprintf(stderr, "store: %s\n", err);
        abort();
    }
    fz_in_t in = {data, size, 0};
    int rows = 0;
    while (fz_left(&in) > 0 && rows < ROWS_MAX) {
        uint8_t kind = fz_u8(&in) % 4;
        size_t ipn, rn;
        const uint8_t *ipp = fz_bytes(&in, fz_u8(&in), &ipn);
        char *ip = cstr(ipp, ipn);
        uint64_t hi = fz_u32(&in), until = hi << 32 | fz_u32(&in);
        const uint8_t *rp = fz_bytes(&in, fz_u8(&in), &rn);
        char *reason = cstr(rp, rn);
        int64_t count = (int32_t)fz_u32(&in);
        switch (kind) {
        case 0:
        case 1:
            tn_store_exec(st,
                          "INSERT OR REPLACE INTO bans(ip,until_ms,reason,created_ms,count) "
                          "VALUES(?,?,?,0,?)",
                          "titi", kind == 0 ? ip : NULL, (int64_t)until, reason, count);
            break;
        case 2:
            tn_store_exec(st,
                          "INSERT OR REPLACE INTO bans(ip,until_ms,reason,created_ms,count) "
                          "VALUES(?,?,?,0,?) -- blob ip",
                          "biti", ipp, ipn, (int64_t)until, reason, count);
            break;
        default:
            tn_store_exec(st,
                          "INSERT OR REPLACE INTO bans(ip,until_ms,reason,created_ms,count) "
                          "VALUES(?,?,?,0,?) -- integer ip",
                          "iiti", (int64_t)until, (int64_t)until, reason, count);
            break;
        }
        free(ip);
        free(reason);
        rows++;
    }
    tn_store_flush_sync(st);

    tn_node_t *n = calloc(1, sizeof(*n));
    if (!n) abort();
    n->store = st;
    int rc = tn_bans_load(n);
    FZ_CHECK(rc == TN_OK, "tn_bans_load %d", rc);
    FZ_CHECK(n->n_bans >= 0 && n->n_bans <= rows, "%d bans from %d rows", n->n_bans, rows);
    for (int i = 0; i < n->n_bans; i++)
        FZ_CHECK(memchr(n->bans[i].reason, 0, sizeof n->bans[i].reason) != NULL,
                 "reason not terminated");
    tn_bans_free(n); /* the bans and their index */
    free(n);
    tn_store_close(st);
    uv_run(loop(), UV_RUN_NOWAIT); /* the store's timer close callback frees it */
    return 0;
}
