/* Propagation traces: the file, its buffering and the line format (see tn_trace.h). Lines
 * are buffered and flushed at least once a second, so a node killed with SIGKILL loses at
 * most the last second of events. */
#include "tn_trace.h"

#include "tn_common.h"
#include "tn_node.h"

#include <stdio.h>
#include <time.h>

#define TRACE_BUF (64 * 1024)
#define TRACE_FLUSH_MS 1000

bool tn_trace_on;
static FILE *trace_fp;
static uint64_t last_flush_ms;

int tn_trace_open(tn_node_t *n, char *err, size_t errlen)
{
    const char *path = n->cfg->trace_file;
    if (!path || !path[0]) return TN_OK;
    trace_fp = fopen(path, "a");
    if (!trace_fp) {
        snprintf(err, errlen, "cannot open trace_file %s", path);
        return TN_EIO;
    }
    setvbuf(trace_fp, NULL, _IOFBF, TRACE_BUF);
    tn_trace_on = true;
    last_flush_ms = tn_mono_ms();
    return TN_OK;
}

void tn_trace_close(void)
{
    tn_trace_on = false;
    if (trace_fp) fclose(trace_fp);
    trace_fp = NULL;
}

static void peer_name(const tn_session_t *s, char *out, size_t n)
{
    if (s->hello && s->their_name[0]) {
        /* names are printable (hello decoding checks them); keep JSON safe anyway */
        size_t o = 0;
        for (const char *c = s->their_name; *c && o + 1 < n; c++)
            out[o++] = (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) ? '_' : *c;
        out[o] = 0;
        return;
    }
    char hex[2 * TN_ID_LEN + 1];
    tn_hex(hex, s->their_id, TN_ID_LEN);
    snprintf(out, n, "%.8s", hex);
}

void tn_trace_event(tn_node_t *n, const char *ev, const char *type, const uint8_t *id, size_t idlen,
                    const tn_session_t *from, const tn_session_t *to, const char *outcome)
{
    if (!trace_fp) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char hex[2 * 32 + 1] = "", f[TN_NAME_MAX + 1] = "self", t[TN_NAME_MAX + 1] = "";
    if (idlen > 32) idlen = 32;
    if (id) tn_hex(hex, id, idlen);
    if (from) peer_name(from, f, sizeof f);
    if (to) peer_name(to, t, sizeof t);
    fprintf(trace_fp,
            "{\"t\":%lld,\"node\":\"%s\",\"ev\":\"%s\",\"type\":\"%s\",\"id\":\"%s\","
            "\"from\":\"%s\"",
            (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, n->cfg->node_name, ev, type, hex,
            f);
    if (to) fprintf(trace_fp, ",\"to\":\"%s\"", t);
    if (outcome) fprintf(trace_fp, ",\"outcome\":\"%s\"", outcome);
    fputs("}\n", trace_fp);
    uint64_t now = tn_mono_ms();
    if (now - last_flush_ms >= TRACE_FLUSH_MS) {
        fflush(trace_fp);
        last_flush_ms = now;
    }
}
