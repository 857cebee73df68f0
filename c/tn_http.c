/* Metrics over HTTP (see tn_http.h): accept, read one request head, answer, close. */
#include "tn_http.h"

#include "tn_buf.h"
#include "tn_metrics.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    struct conn *next;
    tn_http_t *http;
    char req[TN_HTTP_REQ_MAX];
    size_t len;
    int handles; /* open libuv handles; freed when 0 */
    bool closing, answered;
    tn_buf_t out;
} conn_t;

struct tn_http {
    uv_tcp_t server;
    conn_t *conns;
    int n_conns;
    tn_http_collect_fn collect;
    void *ud;
    tn_metric_t *m_requests, *m_refused;
};

static void on_conn_handle_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (--c->handles == 0) {
        tn_buf_free(&c->out);
        free(c);
    }
}

static void conn_close(conn_t *c)
{
    if (c->closing) return;
    c->closing = true;
    tn_http_t *h = c->http;
    for (conn_t **pp = &h->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    h->n_conns--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* After the answer: FIN, then read (and drop) until the client closes, so unread request
 * bytes never turn the close into a reset that could destroy the answer in flight. The
 * connection timer still bounds this. */
static void on_shutdown(uv_shutdown_t *req, int status)
{
    conn_t *c = req->data;
    if (status < 0 || c->closing || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

static void on_written(uv_write_t *req, int status)
{
    conn_t *c = req->data;
    c->sreq.data = c;
    if (status < 0 || c->closing || uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
        conn_close(c);
}

static void respond(conn_t *c, const char *status, const char *ctype, const char *extra,
                    const tn_buf_t *body, bool head_only)
{
    char hdr[512];
    size_t blen = body ? body->len : 0;
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     status, ctype, blen, extra ? extra : "");
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    tn_buf_init(&c->out, sizeof hdr + TN_HTTP_BODY_MAX);
    if (tn_buf_append(&c->out, hdr, (size_t)n) ||
        (!head_only && blen && tn_buf_append(&c->out, body->p, blen))) {
        conn_close(c);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)c->out.p, (unsigned)c->out.len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) conn_close(c);
}

static void respond_text(conn_t *c, const char *status, const char *text, const char *extra)
{
    tn_buf_t b;
    tn_buf_init(&b, 256);
    tn_buf_append(&b, text, strlen(text));
    respond(c, status, "text/plain; charset=utf-8", extra, &b, false);
    tn_buf_free(&b);
}

/* The request head is complete: "METHOD SP target SP HTTP/x.y". Headers are ignored. */
static void handle(conn_t *c)
{
    tn_http_t *h = c->http;
    tn_metric_inc(h->m_requests);
    char method[16], target[256], version[16];
    char *eol = memchr(c->req, '\n', c->len);
    *eol = 0;
    if (sscanf(c->req, "%15s %255s %15s", method, target, version) != 3 ||
        strncmp(version, "HTTP/", 5) != 0) {
        respond_text(c, "400 Bad Request", "bad request\n", NULL);
        return;
    }
    bool get = strcmp(method, "GET") == 0, head = strcmp(method, "HEAD") == 0;
    if (!get && !head) {
        respond_text(c, "405 Method Not Allowed", "only GET and HEAD\n", "Allow: GET, HEAD\r\n");
        return;
    }
    char *q = strchr(target, '?');
    if (q) *q = 0; /* Prometheus may add query parameters: they change nothing here */
    if (strcmp(target, "/metrics") != 0) {
        respond_text(c, "404 Not Found", "not found: the metrics are at /metrics\n", NULL);
        return;
    }
    if (h->collect) h->collect(h->ud);
    tn_buf_t body;
    tn_buf_init(&body, TN_HTTP_BODY_MAX);
    if (tn_metrics_prometheus(&body) != TN_OK)
        respond_text(c, "500 Internal Server Error", "exposition too large\n", NULL);
    else
        respond(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8", NULL, &body, head);
    tn_buf_free(&body);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = hd->data;
    (void)suggested;
    if (c->answered) c->len = 0; /* draining: the bytes are dropped */
    *buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof c->req - c->len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = st->data;
    (void)buf;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (c->answered) return; /* draining after the answer */
    c->len += (size_t)nread;
    /* The head ends with an empty line; a bare "\n\n" is accepted from hand-typed tests. */
    for (size_t i = 0; i + 1 < c->len; i++) {
        if (c->req[i] != '\n') continue;
        if (c->req[i + 1] == '\n' ||
            (c->req[i + 1] == '\r' && i + 2 < c->len && c->req[i + 2] == '\n')) {
            handle(c);
            return;
        }
    }
    if (c->len == sizeof c->req)
        respond_text(c, "431 Request Header Fields Too Large", "request too large\n", NULL);
}

static void on_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    tn_http_t *h = server->data;
    if (status < 0) return;
    conn_t *c = calloc(1, sizeof(*c));
    if (!c) return;
    c->http = h;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = h->conns;
    h->conns = c;
    h->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (h->n_conns > TN_HTTP_CLIENTS_MAX) {
        tn_metric_inc(h->m_refused);
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, TN_HTTP_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) conn_close(c);
}

int tn_http_start(tn_http_t **out, uv_loop_t *loop, const tn_addr_t *addr,
                  tn_http_collect_fn collect, void *ud, char *err, size_t errlen)
{
    tn_http_t *h = calloc(1, sizeof(*h));
    if (!h) return TN_ENOMEM;
    h->collect = collect;
    h->ud = ud;
    h->m_requests =
        tn_metric_counter("tn_metrics_http_requests_total", "Requests to the metrics endpoint");
    h->m_refused = tn_metric_counter("tn_metrics_http_refused_total",
                                     "Metrics connections closed at accept: too many at once");
    uv_tcp_init(loop, &h->server);
    h->server.data = h;
    struct sockaddr_storage ss;
    tn_addr_to_sockaddr(addr, &ss);
    int rc = uv_tcp_bind(&h->server, (struct sockaddr *)&ss, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&h->server, 64, on_connection);
    if (rc) {
        char a[TN_ADDR_STRLEN];
        tn_addr_fmt(addr, a);
        snprintf(err, errlen, "cannot serve metrics on %s: %s", a, uv_strerror(rc));
        tn_http_stop(h);
        return TN_EIO;
    }
    *out = h;
    return TN_OK;
}

static void on_server_closed(uv_handle_t *hd)
{
    free(hd->data);
}

void tn_http_stop(tn_http_t *h)
{
    if (!h) return;
    while (h->conns) conn_close(h->conns);
    uv_close((uv_handle_t *)&h->server, on_server_closed);
}
