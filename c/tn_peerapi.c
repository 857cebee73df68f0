/* The HTTP peer API client (see tn_peerapi.h): libcurl multi on the libuv loop, and the
 * strict answer parser. curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and
 * when to call it back (CURLMOPT_TIMERFUNCTION); we never call a blocking curl function. */
#include "tn_peerapi.h"

#include <cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef TN_VERSION
#define TN_VERSION "0.1.0"
#endif

struct tn_peerapi {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    CURL *easy; /* the request in flight, or NULL */
    char *body;
    size_t len, cap, max;
    bool too_big, closing;
    int handles; /* libuv handles not yet closed: the timer and one poll per socket */
    tn_peerapi_done_fn done;
    void *ud;
};

typedef struct {
    uv_poll_t poll;
    curl_socket_t fd;
    tn_peerapi_t *a;
} sock_t;

static void handle_closed(tn_peerapi_t *a)
{
    if (--a->handles == 0 && a->closing) {
        free(a->body);
        free(a);
    }
}

static void on_sock_closed(uv_handle_t *h)
{
    sock_t *k = h->data;
    tn_peerapi_t *a = k->a;
    free(k);
    handle_closed(a);
}

static void on_timer_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void finish(tn_peerapi_t *a, CURL *e, CURLcode rc)
{
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_multi_remove_handle(a->multi, e);
    curl_easy_cleanup(e);
    a->easy = NULL;
    char err[CURL_ERROR_SIZE + 64] = "";
    if (a->too_big || rc == CURLE_FILESIZE_EXCEEDED) /* by Content-Length, or while reading */
        snprintf(err, sizeof err, "answer larger than %zu bytes", a->max);
    else if (rc != CURLE_OK) /* curl's own words, not its errbuf: those hold timings, and the
                              * same failure must read the same to be logged once */
        snprintf(err, sizeof err, "%s", curl_easy_strerror(rc));
    else if (code != 200)
        snprintf(err, sizeof err, "HTTP status %ld", code);
    tn_peerapi_done_fn done = a->done;
    a->done = NULL;
    if (!done) return;
    if (err[0]) {
        done(a->ud, NULL, 0, err);
    } else {
        if (!a->body) a->body = calloc(1, 1);
        if (a->body) a->body[a->len] = 0;
        done(a->ud, a->body ? a->body : "", a->body ? a->len : 0, NULL);
    }
}

static void check_done(tn_peerapi_t *a)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(a->multi, &left)))
        if (m->msg == CURLMSG_DONE) finish(a, m->easy_handle, m->data.result);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_t *k = h->data;
    tn_peerapi_t *a = k->a;
    int flags = 0, running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(a->multi, k->fd, flags, &running);
    check_done(a);
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)e;
    tn_peerapi_t *a = userp;
    sock_t *k = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (k) {
            curl_multi_assign(a->multi, fd, NULL);
            uv_close((uv_handle_t *)&k->poll, on_sock_closed); /* stops watching at once */
        }
        return 0;
    }
    if (!k) {
        k = calloc(1, sizeof(*k));
        if (!k) return -1;
        if (uv_poll_init_socket(a->loop, &k->poll, fd) != 0) {
            free(k);
            return -1;
        }
        k->fd = fd;
        k->a = a;
        k->poll.data = k;
        a->handles++;
        curl_multi_assign(a->multi, fd, k);
    }
    int ev = 0;
    if (what & CURL_POLL_IN) ev |= UV_READABLE;
    if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
    uv_poll_start(&k->poll, ev, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    tn_peerapi_t *a = t->data;
    int running;
    curl_multi_socket_action(a->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(a);
}

/* curl may not be called back from inside this function: a 0 ms timer runs it next. */
static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    tn_peerapi_t *a = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&a->timer);
    else
        uv_timer_start(&a->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    tn_peerapi_t *a = ud;
    size_t n = size * nmemb;
    if (n > a->max - a->len) {
        a->too_big = true;
        return 0; /* curl aborts the transfer */
    }
    if (a->len + n + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 16384;
        while (cap < a->len + n + 1) cap *= 2;
        char *b = realloc(a->body, cap);
        if (!b) return 0;
        a->body = b;
        a->cap = cap;
    }
    memcpy(a->body + a->len, p, n);
    a->len += n;
    return n;
}

int tn_peerapi_new(tn_peerapi_t **out, uv_loop_t *loop)
{
    static bool global;
    if (!global) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return TN_EIO;
        global = true;
    }
    tn_peerapi_t *a = calloc(1, sizeof(*a));
    if (!a) return TN_ENOMEM;
    a->loop = loop;
    if (!(a->multi = curl_multi_init())) {
        free(a);
        return TN_ENOMEM;
    }
    curl_multi_setopt(a->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(a->multi, CURLMOPT_SOCKETDATA, a);
    curl_multi_setopt(a->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(a->multi, CURLMOPT_TIMERDATA, a);
    uv_timer_init(loop, &a->timer);
    a->timer.data = a;
    a->handles = 1;
    *out = a;
    return TN_OK;
}

bool tn_peerapi_busy(const tn_peerapi_t *a)
{
    return a && a->easy;
}

int tn_peerapi_get(tn_peerapi_t *a, const char *url, double timeout_s, size_t max_bytes,
                   tn_peerapi_done_fn done, void *ud)
{
    if (a->easy) return TN_EALREADY;
    CURL *e = curl_easy_init();
    if (!e) return TN_ENOMEM;
    long ms = (long)(timeout_s * 1000.0);
    if (ms < 1) ms = 1;
    a->len = 0;
    a->max = max_bytes;
    a->too_big = false;
    if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) {
        curl_easy_cleanup(e);
        return TN_EINVAL;
    }
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_bytes);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "timenetd/" TN_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, a);
    a->done = done;
    a->ud = ud;
    a->easy = e;
    if (curl_multi_add_handle(a->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        a->easy = NULL;
        a->done = NULL;
        return TN_EIO;
    }
    return TN_OK;
}

void tn_peerapi_close(tn_peerapi_t *a)
{
    if (!a) return;
    a->done = NULL;
    if (a->easy) {
        curl_multi_remove_handle(a->multi, a->easy); /* closes its sockets via on_socket */
        curl_easy_cleanup(a->easy);
        a->easy = NULL;
    }
    curl_multi_cleanup(a->multi);
    a->multi = NULL;
    a->closing = true;
    uv_close((uv_handle_t *)&a->timer, on_timer_closed);
}

/* ---- the answer ---- */

static int parse_item(const cJSON *it, tn_api_peer_t *p, char *why, size_t n)
{
    const char *addr = NULL;
    memset(p, 0, sizeof(*p));
    if (cJSON_IsString(it)) {
        addr = it->valuestring;
    } else if (cJSON_IsObject(it)) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(it, "addr");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (!cJSON_IsString(a)) {
            snprintf(why, n, "no \"addr\" string");
            return TN_EINVAL;
        }
        addr = a->valuestring;
        if (id && !cJSON_IsNull(id)) {
            if (!cJSON_IsString(id) || strlen(id->valuestring) != 64 ||
                tn_unhex(p->id, 32, id->valuestring) != TN_OK) {
                snprintf(why, n, "\"id\" is not 64 hex digits");
                return TN_EINVAL;
            }
            p->has_id = true;
        }
    } else {
        snprintf(why, n, "neither an address string nor an object");
        return TN_EINVAL;
    }
    if (strlen(addr) >= TN_ADDR_STRLEN || tn_addr_parse(addr, &p->addr) != TN_OK ||
        p->addr.port == 0) {
        snprintf(why, n, "\"%.60s\" is not an address IP:port", addr);
        return TN_EINVAL;
    }
    return TN_OK;
}

int tn_peerapi_parse(const char *body, size_t len, tn_api_peer_t *out, int max, char *err,
                     size_t errlen)
{
    if (memchr(body, 0, len)) {
        snprintf(err, errlen, "not JSON: a NUL byte");
        return TN_EINVAL;
    }
    const char *end = NULL;
    /* len + 1 includes the terminating NUL: with require_null_terminated, anything but
     * whitespace after the value is an error. */
    cJSON *root = cJSON_ParseWithLengthOpts(body, len + 1, &end, 1);
    if (!root) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        snprintf(err, errlen, "not JSON (at byte %zu)", at);
        return TN_EINVAL;
    }
    const cJSON *list = root;
    if (cJSON_IsObject(root)) list = cJSON_GetObjectItemCaseSensitive(root, "peers");
    int rc = 0;
    if (!cJSON_IsArray(list)) {
        snprintf(err, errlen, "expected a JSON array of addresses, or {\"peers\": [...]}");
        rc = TN_EINVAL;
    } else if (cJSON_GetArraySize(list) > max) {
        snprintf(err, errlen, "more than %d addresses", max);
        rc = TN_EINVAL;
    } else {
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, list)
        {
            char why[96];
            if (parse_item(it, &out[i], why, sizeof why) != TN_OK) {
                snprintf(err, errlen, "item %d: %s", i + 1, why);
                rc = TN_EINVAL;
                break;
            }
            i++;
        }
        if (rc == 0) rc = i;
    }
    cJSON_Delete(root);
    return rc;
}
