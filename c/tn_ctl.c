/* Control socket transport (see tn_ctl.h): accept, line framing, JSON parse, dispatch. */
#include "tn_ctl.h"

#include "tn_buf.h"
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

typedef struct client {
    uv_pipe_t pipe;
    struct client *next;
    uint64_t id;
    tn_ctl_t *ctl;
    tn_buf_t in;
    int closing;
} client_t;

struct tn_ctl {
    uv_pipe_t server;
    tn_node_t *node;
    client_t *clients;
    int n_clients;
    uint64_t next_id;
    client_t *current; /* the client whose request is being handled */
    char path[4200];
};

typedef struct {
    uv_write_t req;
    char *mem;
} cwrite_t;

int tn_ctl_error(cJSON *reply, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON_DeleteItemFromObject(reply, "error");
    cJSON_AddStringToObject(reply, "error", msg);
    return -1;
}

static void on_client_closed(uv_handle_t *h)
{
    client_t *c = h->data;
    tn_buf_free(&c->in);
    free(c);
}

static void client_close(client_t *c)
{
    if (c->closing) return;
    c->closing = 1;
    tn_ctl_t *ctl = c->ctl;
    for (client_t **pp = &ctl->clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    ctl->n_clients--;
    uv_close((uv_handle_t *)&c->pipe, on_client_closed);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    cwrite_t *w = (cwrite_t *)req;
    free(w->mem);
    free(w);
}

static void reply_send(client_t *c, cJSON *reply)
{
    char *text = cJSON_PrintUnformatted(reply);
    if (!text) return;
    size_t len = strlen(text);
    char *mem = malloc(len + 1);
    cwrite_t *w = malloc(sizeof(*w));
    if (!mem || !w) {
        free(mem);
        free(w);
        free(text);
        return;
    }
    memcpy(mem, text, len);
    mem[len] = '\n';
    free(text);
    w->mem = mem;
    uv_buf_t b = uv_buf_init(mem, (unsigned)len + 1);
    if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_written) != 0) {
        free(mem);
        free(w);
        client_close(c);
    }
}

static void handle_line(client_t *c, const char *line, size_t len)
{
    cJSON *reply = cJSON_CreateObject();
    cJSON *req = cJSON_ParseWithLength(line, len);
    int rc = -1;
    const cJSON *cmd = req ? cJSON_GetObjectItemCaseSensitive(req, "cmd") : NULL;
    if (!req || !cJSON_IsObject(req))
        tn_ctl_error(reply, "request is not a JSON object");
    else if (!cJSON_IsString(cmd))
        tn_ctl_error(reply, "request has no \"cmd\" string");
    else {
        tn_ctl_verb_fn fn = tn_ctl_verb(cmd->valuestring);
        if (!fn)
            tn_ctl_error(reply, "unknown command '%.64s' (try \"help\")", cmd->valuestring);
        else {
            c->ctl->current = c;
            rc = fn(c->ctl->node, req, reply);
            c->ctl->current = NULL;
        }
    }
    if (rc == TN_CTL_LATER) {
        cJSON_Delete(reply);
        cJSON_Delete(req);
        return;
    }
    cJSON_AddBoolToObject(reply, "ok", rc == 0);
    tn_metric_inc(tn_metric_counter("tn_ctl_requests_total", "Control socket requests"));
    reply_send(c, reply);
    cJSON_Delete(reply);
    cJSON_Delete(req);
}

tn_ctl_hold_t tn_ctl_hold(tn_node_t *n)
{
    tn_ctl_hold_t h = {n->ctl, n->ctl && n->ctl->current ? n->ctl->current->id : 0};
    return h;
}

void tn_ctl_answer(tn_ctl_hold_t h, cJSON *reply, bool ok)
{
    if (!h.ctl || !h.client) return;
    for (client_t *c = h.ctl->clients; c; c = c->next)
        if (c->id == h.client && !c->closing) {
            cJSON_AddBoolToObject(reply, "ok", ok);
            reply_send(c, reply);
            return;
        }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    client_t *c = h->data;
    (void)suggested;
    if (tn_buf_reserve(&c->in, 4096) != TN_OK) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init((char *)c->in.p + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    client_t *c = st->data;
    (void)buf;
    if (nread < 0) {
        client_close(c);
        return;
    }
    c->in.len += (size_t)nread;
    for (;;) {
        uint8_t *start = c->in.p + c->in.off;
        uint8_t *nl = memchr(start, '\n', c->in.len - c->in.off);
        if (!nl) break;
        handle_line(c, (const char *)start, (size_t)(nl - start));
        if (c->closing) return;
        c->in.off += (size_t)(nl - start) + 1;
    }
    tn_buf_compact(&c->in);
    if (c->in.len >= TN_CTL_LINE_MAX) client_close(c); /* a line that never ends */
}

static void on_connection(uv_stream_t *server, int status)
{
    tn_ctl_t *ctl = server->data;
    if (status < 0) return;
    client_t *c = calloc(1, sizeof(*c));
    if (!c) return;
    uv_pipe_init(server->loop, &c->pipe, 0);
    c->pipe.data = c;
    c->ctl = ctl;
    c->id = ++ctl->next_id;
    tn_buf_init(&c->in, TN_CTL_LINE_MAX);
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 || ctl->n_clients >= TN_CTL_CLIENTS_MAX) {
        uv_close((uv_handle_t *)&c->pipe, on_client_closed);
        return;
    }
    c->next = ctl->clients;
    ctl->clients = c;
    ctl->n_clients++;
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

static void on_server_closed(uv_handle_t *h)
{
    free(h->data);
}

int tn_ctl_start(tn_ctl_t **out, tn_node_t *n, const char *path, char *err, size_t errlen)
{
    tn_ctl_t *ctl = calloc(1, sizeof(*ctl));
    if (!ctl) return TN_ENOMEM;
    ctl->node = n;
    snprintf(ctl->path, sizeof ctl->path, "%s", path);
    if (strlen(path) >= 107) { /* sun_path */
        snprintf(err, errlen, "control socket path %s is too long (max 107 bytes)", path);
        free(ctl);
        return TN_ETOOBIG;
    }
    uv_pipe_init(n->loop, &ctl->server, 0);
    ctl->server.data = ctl;
    unlink(path); /* a stale socket of a previous run; the data dir lock says it is ours */
    mode_t old = umask(0077);
    int rc = uv_pipe_bind(&ctl->server, path);
    umask(old);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&ctl->server, 16, on_connection);
    if (rc) {
        snprintf(err, errlen, "cannot create control socket %s: %s", path, uv_strerror(rc));
        uv_close((uv_handle_t *)&ctl->server, on_server_closed); /* frees ctl */
        return TN_EIO;
    }
    chmod(path, 0600);
    *out = ctl;
    return TN_OK;
}

void tn_ctl_stop(tn_ctl_t *ctl)
{
    if (!ctl) return;
    while (ctl->clients) client_close(ctl->clients);
    unlink(ctl->path);
    uv_close((uv_handle_t *)&ctl->server, on_server_closed);
}
