/* Address parsing and formatting (see tn_addr.h). */
#include "tn_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>

static const uint8_t V4MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool tn_addr_is_v4(const tn_addr_t *a)
{
    return memcmp(a->ip, V4MAPPED, 12) == 0;
}

int tn_addr_parse_ip(const char *s, tn_addr_t *a)
{
    memset(a, 0, sizeof(*a));
    struct in_addr v4;
    if (inet_pton(AF_INET, s, &v4) == 1) {
        memcpy(a->ip, V4MAPPED, 12);
        memcpy(a->ip + 12, &v4, 4);
        return TN_OK;
    }
    if (inet_pton(AF_INET6, s, a->ip) == 1) return TN_OK;
    return TN_EINVAL;
}

int tn_addr_parse(const char *s, tn_addr_t *a)
{
    char host[64];
    const char *colon;
    if (!s) return TN_EINVAL;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host) return TN_EINVAL;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = 0;
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof host) return TN_EINVAL;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
        if (strchr(host, ':')) return TN_EINVAL; /* bare IPv6 needs brackets */
    }
    char *end;
    if (colon[1] < '0' || colon[1] > '9') return TN_EINVAL;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) return TN_EINVAL;
    if (tn_addr_parse_ip(host, a)) return TN_EINVAL;
    a->port = (uint16_t)port;
    return TN_OK;
}

void tn_addr_fmt_ip(const tn_addr_t *a, char out[TN_ADDR_STRLEN])
{
    if (tn_addr_is_v4(a))
        inet_ntop(AF_INET, a->ip + 12, out, TN_ADDR_STRLEN);
    else
        inet_ntop(AF_INET6, a->ip, out, TN_ADDR_STRLEN);
}

void tn_addr_fmt(const tn_addr_t *a, char out[TN_ADDR_STRLEN])
{
    char ip[TN_ADDR_STRLEN];
    tn_addr_fmt_ip(a, ip);
    if (tn_addr_is_v4(a))
        snprintf(out, TN_ADDR_STRLEN, "%.16s:%u", ip, a->port);
    else
        snprintf(out, TN_ADDR_STRLEN, "[%.46s]:%u", ip, a->port);
}

void tn_addr_to_sockaddr(const tn_addr_t *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (tn_addr_is_v4(a)) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(a->port);
        memcpy(&s4->sin_addr, a->ip + 12, 4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(a->port);
        memcpy(&s6->sin6_addr, a->ip, 16);
    }
}

int tn_addr_from_sockaddr(const struct sockaddr *sa, tn_addr_t *a)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        memcpy(a->ip, V4MAPPED, 12);
        memcpy(a->ip + 12, &s4->sin_addr, 4);
        a->port = ntohs(s4->sin_port);
        return TN_OK;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        memcpy(a->ip, &s6->sin6_addr, 16);
        a->port = ntohs(s6->sin6_port);
        return TN_OK;
    }
    return TN_EINVAL;
}

bool tn_addr_is_any(const tn_addr_t *a)
{
    static const uint8_t zero[16];
    if (tn_addr_is_v4(a)) return memcmp(a->ip + 12, zero, 4) == 0;
    return memcmp(a->ip, zero, 16) == 0;
}

bool tn_addr_is_local(const tn_addr_t *a)
{
    const uint8_t *p = a->ip;
    if (tn_addr_is_any(a)) return true;
    if (tn_addr_is_v4(a)) {
        const uint8_t *v = p + 12;
        return v[0] == 127 || v[0] == 10 || (v[0] == 172 && (v[1] & 0xf0) == 16) ||
               (v[0] == 192 && v[1] == 168) || (v[0] == 169 && v[1] == 254) ||
               (v[0] == 100 && (v[1] & 0xc0) == 64) || v[0] == 0;
    }
    static const uint8_t loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return memcmp(p, loop6, 16) == 0 || (p[0] & 0xfe) == 0xfc || /* ULA fc00::/7 */
           (p[0] == 0xfe && (p[1] & 0xc0) == 0x80);              /* link-local */
}
