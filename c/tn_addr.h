/* Network addresses as compact values: a 16-byte IP (IPv4 held as v4-mapped IPv6) and a
 * port, so they hash, compare and copy cheaply. Text form: "1.2.3.4:5" or "[::1]:5". */
#ifndef TN_ADDR_H
#define TN_ADDR_H

#include "tn_common.h"

#include <stdbool.h>
#include <sys/socket.h>

#define TN_ADDR_STRLEN 56 /* "[" + IPv6 text (46) + "]:" + port (5) + NUL */

typedef struct {
    uint8_t ip[16];
    uint16_t port;
} tn_addr_t;

int tn_addr_parse(const char *s, tn_addr_t *a);
/* Parses an IP without a port (whitelists, bans). */
int tn_addr_parse_ip(const char *s, tn_addr_t *a);
bool tn_addr_is_v4(const tn_addr_t *a);
void tn_addr_fmt(const tn_addr_t *a, char out[TN_ADDR_STRLEN]);    /* ip:port */
void tn_addr_fmt_ip(const tn_addr_t *a, char out[TN_ADDR_STRLEN]); /* ip */
void tn_addr_to_sockaddr(const tn_addr_t *a, struct sockaddr_storage *ss);
int tn_addr_from_sockaddr(const struct sockaddr *sa, tn_addr_t *a);
static inline bool tn_addr_eq(const tn_addr_t *a, const tn_addr_t *b)
{
    return a->port == b->port && memcmp(a->ip, b->ip, 16) == 0;
}
static inline bool tn_addr_same_ip(const tn_addr_t *a, const tn_addr_t *b)
{
    return memcmp(a->ip, b->ip, 16) == 0;
}
/* Loopback, private, link-local or unspecified: not reachable from the internet. */
bool tn_addr_is_local(const tn_addr_t *a);
bool tn_addr_is_any(const tn_addr_t *a);

#endif
