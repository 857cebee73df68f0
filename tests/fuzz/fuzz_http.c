/* Fuzz target `http`: the metrics endpoint's request reader (tn_http.c: head accumulation,
 * end-of-head detection, request-line parse, method and path checks) over a real loopback
 * connection to a tn_http started for each input on a libuv loop. Input: split class byte,
 * then the bytes a client sends (in chunks of 1..fz_chunk_max(class), each read by the server
 * before the next is sent); the harness then half-closes. Whatever it sends, the server
 * answers at most once, with a well-formed HTTP/1.0 head whose Content-Length matches the
 * body, and after tn_http_stop every handle is closed and all memory freed. */
#define _GNU_SOURCE
#include "fz_common.h"
#include "tn_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STALL_MS 3000
#define RESP_MAX (256u << 10)

static uv_loop_t g_loop;
static int g_port;

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* Runs the loop without blocking until it has nothing ready. */
static void settle(void)
{
    struct pollfd p = {uv_backend_fd(&g_loop), POLLIN, 0};
    do uv_run(&g_loop, UV_RUN_NOWAIT);
    while (poll(&p, 1, 0) == 1);
}

static void setup(void)
{
    if (uv_loop_init(&g_loop)) abort();
    /* A free port, then the server binds it for each input (libuv sets SO_REUSEADDR). */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) ||
        getsockname(fd, (struct sockaddr *)&sa, &len))
        abort();
    g_port = ntohs(sa.sin_port);
    close(fd);
}

/* Whether the request line's method is HEAD, read as handle() does (sscanf skips leading
 * blanks; the line ends at the first '\n'). */
static bool is_head(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && strchr(" \t\r\v\f", p[i]) && p[i]) i++;
    return n - i > 4 && memcmp(p + i, "HEAD", 4) == 0 && p[i + 4] && strchr(" \t\r\v\f", p[i + 4]);
}

static void check_response(const char *r, size_t n, bool head)
{
    if (n == 0) return; /* closed without an answer (timeout, reset): allowed */
    FZ_CHECK(n >= 13 && memcmp(r, "HTTP/1.0 ", 9) == 0 && r[12] == ' ', "bad status line");
    int code = atoi(r + 9);
    FZ_CHECK(code == 200 || code == 400 || code == 404 || code == 405 || code == 431, "status %d",
             code);
    const char *end = memmem(r, n, "\r\n\r\n", 4);
    FZ_CHECK(end != NULL, "head without an end");
    const char *cl = memmem(r, (size_t)(end - r), "\r\nContent-Length: ", 18);
    FZ_CHECK(cl != NULL, "no Content-Length");
    size_t want = strtoul(cl + 18, NULL, 10), body = n - (size_t)(end + 4 - r);
    FZ_CHECK(body == (head && code == 200 ? 0 : want), "body %zu bytes, Content-Length %zu", body,
             want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384) return 0;
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    tn_addr_t a;
    char addr[32], err[256];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", g_port);
    if (tn_addr_parse(addr, &a)) abort();
    tn_http_t *h;
    FZ_CHECK(tn_http_start(&h, &g_loop, &a, NULL, NULL, err, sizeof err) == TN_OK, "%s", err);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", g_port, &sa);
    FZ_CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect: %s",
             strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    settle(); /* accepted */

    uint32_t chunk = fz_chunk_max(data[0]), seed = 0x2545f491u;
    const uint8_t *p = data + 1;
    size_t n = size - 1, off = 0;
    char *resp = malloc(RESP_MAX);
    size_t got = 0;
    bool peer_closed = false;
    uint64_t t0 = now_ms();
    while (off < n && !peer_closed) {
        size_t want = 1 + fz_rand(&seed) % chunk;
        ssize_t w = send(fd, p + off, TN_MIN(n - off, want), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EINTR)
            break;
        settle();
        ssize_t r = recv(fd, resp + got, RESP_MAX - got, MSG_DONTWAIT);
        if (r > 0) got += (size_t)r;
        if (r == 0) peer_closed = true;
        FZ_CHECK(now_ms() - t0 < STALL_MS, "server stopped reading");
    }
    shutdown(fd, SHUT_WR); /* no more request: an unfinished head ends here */
    while (!peer_closed) {
        settle();
        ssize_t r = recv(fd, resp + got, RESP_MAX - got, MSG_DONTWAIT);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0 || (errno != EAGAIN && errno != EINTR))
            peer_closed = true;
        if (!peer_closed) {
            struct pollfd pf[2] = {{fd, POLLIN, 0}, {uv_backend_fd(&g_loop), POLLIN, 0}};
            poll(pf, 2, 5);
        }
        FZ_CHECK(now_ms() - t0 < STALL_MS, "no answer and no close");
    }
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
    bool head = is_head(p, n);
    check_response(resp, got, head);
    free(resp);

    tn_http_stop(h);
    t0 = now_ms();
    while (uv_loop_alive(&g_loop)) {
        uv_run(&g_loop, UV_RUN_NOWAIT);
        FZ_CHECK(now_ms() - t0 < STALL_MS, "handles still open after tn_http_stop");
    }
    return 0;
}
