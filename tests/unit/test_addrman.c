/* The address table (tn_addrman.h): its bound holds under any flood, one source reaches at
 * most its own buckets, an address that worked is never pushed out by learned ones, aging
 * removes what never worked, and restoring from the store keeps tried entries tried. Also
 * the peers message codec and the peer API parser, the other inputs discovery takes. */
#include "tn_addrman.h"
#include "tn_peerapi.h"
#include "tn_proto.h"
#include "tn_test.h"

#include <stdio.h>
#include <stdlib.h>

#define NOW 1800000000000ull /* unix ms */

static tn_addr_t v4(int a, int b, int c, int d, int port)
{
    char s[32];
    snprintf(s, sizeof s, "%d.%d.%d.%d:%d", a, b, c, d, port);
    tn_addr_t x;
    TN_ASSERT_INT(tn_addr_parse(s, &x), ==, TN_OK);
    return x;
}

static int count_from(tn_addrman_t *am, const tn_addr_t *src)
{
    int n = 0;
    tn_am_entry_t *e;
    for (int i = -1; (e = tn_addrman_next(am, &i));) n += tn_addr_same_ip(&e->src, src);
    return n;
}

TN_TEST(addrman_netgroups)
{
    tn_addr_t a = v4(10, 1, 2, 3, 1), b = v4(10, 1, 200, 9, 2), c = v4(10, 2, 2, 3, 1);
    TN_ASSERT(tn_netgroup(&a) == tn_netgroup(&b));
    TN_ASSERT(tn_netgroup(&a) != tn_netgroup(&c));
    tn_addr_t x, y, z;
    TN_ASSERT_INT(tn_addr_parse("[2001:db8:1::1]:1", &x), ==, 0);
    TN_ASSERT_INT(tn_addr_parse("[2001:db8:ffff::2]:1", &y), ==, 0);
    TN_ASSERT_INT(tn_addr_parse("[2001:db9::1]:1", &z), ==, 0);
    TN_ASSERT(tn_netgroup(&x) == tn_netgroup(&y)); /* /32 */
    TN_ASSERT(tn_netgroup(&x) != tn_netgroup(&z));
    TN_ASSERT(tn_netgroup(&a) != tn_netgroup(&x));
    char g[32];
    tn_netgroup_fmt(&a, g, sizeof g);
    TN_ASSERT_STR_EQ(g, "10.1");
    tn_netgroup_fmt(&x, g, sizeof g);
    TN_ASSERT_STR_EQ(g, "2001:db8");
}

/* One peer sends 100k addresses: it fills at most its 16 buckets of 16. */
TN_TEST(addrman_one_source_is_bounded)
{
    tn_addrman_t *am = tn_addrman_new(30ull * 86400 * 1000);
    TN_ASSERT(am != NULL);
    tn_addr_t src = v4(203, 0, 113, 5, 0);
    for (int i = 0; i < 100000; i++) {
        tn_addr_t a = v4(1 + i % 200, (i / 200) % 256, (i / 51200) % 256, 1 + i % 250, 24100);
        tn_addrman_add(am, &a, NULL, TN_AMSRC_EXCHANGE, &src, NOW, NOW);
    }
    TN_ASSERT_INT(count_from(am, &src), <=, TN_AM_SRC_BUCKETS * TN_AM_NEW_SIZE);
    TN_ASSERT_INT(tn_addrman_size(am), <=, TN_AM_MAX);
    /* many sources together still fit the bound */
    for (int s = 0; s < 300; s++) {
        tn_addr_t from = v4(100 + s % 100, s % 256, s / 256, 1, 0);
        for (int i = 0; i < 500; i++) {
            tn_addr_t a = v4(1 + (i + s) % 220, i % 256, s % 256, 1 + i % 250, 24100 + s % 7);
            tn_addrman_add(am, &a, NULL, TN_AMSRC_EXCHANGE, &from, NOW, NOW);
        }
    }
    TN_ASSERT_INT(tn_addrman_size(am), <=, TN_AM_MAX);
    TN_ASSERT_INT(am->n_new, <=, TN_AM_NEW_BUCKETS * TN_AM_NEW_SIZE);
    tn_addrman_free(am);
}

/* Addresses that worked survive any flood of learned ones. */
TN_TEST(addrman_flood_keeps_tried)
{
    tn_addrman_t *am = tn_addrman_new(30ull * 86400 * 1000);
    uint8_t id[32] = {1};
    tn_addr_t good[200];
    for (int i = 0; i < 200; i++) {
        good[i] = v4(50 + i % 50, i, 7, 7, 24100);
        id[1] = (uint8_t)i;
        TN_ASSERT(tn_addrman_good(am, &good[i], id, TN_AMSRC_OUTBOUND, NOW) != NULL);
    }
    int tried = am->n_tried;
    TN_ASSERT_INT(tried, >, 150); /* a few may share a full tried bucket */
    for (int s = 0; s < 50; s++) {
        tn_addr_t from = v4(9, s, 9, 9, 0);
        for (int i = 0; i < 5000; i++) {
            tn_addr_t a = v4(1 + i % 220, (i / 220) % 256, s, 1 + i % 250, 1000 + s);
            tn_addrman_add(am, &a, NULL, TN_AMSRC_EXCHANGE, &from, NOW, NOW);
        }
    }
    TN_ASSERT_INT(am->n_tried, ==, tried);
    int kept = 0;
    for (int i = 0; i < 200; i++) {
        tn_am_entry_t *e = tn_addrman_find(am, &good[i]);
        if (e && e->tried) kept++;
    }
    TN_ASSERT_INT(kept, ==, tried);
    tn_addrman_free(am);
}

TN_TEST(addrman_aging_and_terrible)
{
    uint64_t day = 86400ull * 1000;
    tn_addrman_t *am = tn_addrman_new(30 * day);
    tn_addr_t old = v4(1, 1, 1, 1, 1), fresh = v4(2, 2, 2, 2, 2), bad = v4(3, 3, 3, 3, 3);
    tn_addrman_add(am, &old, NULL, TN_AMSRC_API, NULL, NOW - 31 * day, NOW - 31 * day);
    tn_addrman_add(am, &fresh, NULL, TN_AMSRC_API, NULL, NOW, NOW);
    tn_addrman_add(am, &bad, NULL, TN_AMSRC_API, NULL, NOW, NOW);
    for (int i = 0; i < 3; i++) tn_addrman_failed(am, &bad, NOW - 120000, NOW);
    TN_ASSERT_INT(tn_addrman_sweep(am, NOW), ==, 2); /* too old; never worked in 3 tries */
    TN_ASSERT(tn_addrman_find(am, &fresh) != NULL);
    TN_ASSERT(tn_addrman_find(am, &old) == NULL);
    TN_ASSERT(tn_addrman_find(am, &bad) == NULL);
    /* just tried: never terrible, whatever else */
    tn_addr_t t = v4(4, 4, 4, 4, 4);
    tn_addrman_add(am, &t, NULL, TN_AMSRC_API, NULL, NOW, NOW);
    for (int i = 0; i < 5; i++) tn_addrman_failed(am, &t, NOW, NOW);
    TN_ASSERT(!tn_addrman_terrible(am, tn_addrman_find(am, &t), NOW + 1000));
    TN_ASSERT(tn_addrman_terrible(am, tn_addrman_find(am, &t), NOW + 120000));
    tn_addrman_free(am);
}

TN_TEST(addrman_ids_and_restore)
{
    tn_addrman_t *am = tn_addrman_new(30ull * 86400 * 1000);
    tn_addr_t a = v4(5, 5, 5, 5, 5);
    uint8_t hint[32] = {7}, real[32] = {8};
    tn_addrman_add(am, &a, hint, TN_AMSRC_EXCHANGE, NULL, NOW, NOW);
    TN_ASSERT(tn_addrman_find_id(am, hint) != NULL);
    tn_addrman_good(am, &a, real, TN_AMSRC_OUTBOUND, NOW);
    /* a verified id is not overwritten by another peer's hint */
    tn_addrman_add(am, &a, hint, TN_AMSRC_EXCHANGE, NULL, NOW, NOW);
    TN_ASSERT(tn_addrman_find_id(am, real) != NULL);
    TN_ASSERT(tn_addrman_find_id(am, hint) == NULL);
    tn_am_entry_t copy = *tn_addrman_find(am, &a);
    tn_addrman_t *am2 = tn_addrman_new(30ull * 86400 * 1000);
    TN_ASSERT_INT(tn_addrman_restore(am2, &copy, NOW), ==, TN_OK);
    TN_ASSERT(tn_addrman_find(am2, &a)->tried);
    TN_ASSERT_INT(am2->n_tried, ==, 1);
    TN_ASSERT_INT(tn_addrman_restore(am2, &copy, NOW), ==, TN_EALREADY);
    tn_addrman_free(am);
    tn_addrman_free(am2);
}

TN_TEST(pex_peers_codec)
{
    uint8_t buf[2 + 3 * TN_PEER_ENTRY];
    tn_put_u16(buf, 3);
    for (int i = 0; i < 3; i++) {
        tn_peer_entry_t e;
        memset(&e, 0, sizeof e);
        tn_addr_t a = v4(1, 2, 3, i, 24100 + i);
        memcpy(e.ip, a.ip, 16);
        e.port = a.port;
        e.seen_s = 1700000000u + (uint32_t)i;
        e.id[0] = (uint8_t)i;
        tn_peers_entry_put(buf + 2 + i * TN_PEER_ENTRY, &e);
    }
    TN_ASSERT_INT(tn_peers_decode(buf, sizeof buf), ==, 3);
    tn_peer_entry_t e;
    tn_peers_entry(buf, 2, &e);
    TN_ASSERT_INT(e.port, ==, 24102);
    TN_ASSERT_INT(e.seen_s, ==, 1700000002u);
    TN_ASSERT_INT(e.id[0], ==, 2);
    TN_ASSERT_INT(tn_peers_decode(buf, sizeof buf - 1), ==, TN_EINVAL); /* short */
    TN_ASSERT_INT(tn_peers_decode(buf, 1), ==, TN_EINVAL);
    uint8_t empty[2] = {0, 0};
    TN_ASSERT_INT(tn_peers_decode(empty, 2), ==, 0);
    uint8_t many[2];
    tn_put_u16(many, TN_PEX_MAX + 1);
    TN_ASSERT_INT(tn_peers_decode(many, 2), ==, TN_EINVAL);
    TN_ASSERT_STR_EQ(tn_msg_name(TN_MSG_GET_PEERS), "get_peers");
    TN_ASSERT_STR_EQ(tn_msg_name(TN_MSG_PEERS), "peers");
}

static int parse(const char *s, tn_api_peer_t *out, char *err)
{
    return tn_peerapi_parse(s, strlen(s), out, 3, err, 200);
}

TN_TEST(peerapi_parse_strict)
{
    tn_api_peer_t p[3];
    char err[200];
    TN_ASSERT_INT(parse("[\"1.2.3.4:5\", \"[2001:db8::1]:24100\"]", p, err), ==, 2);
    TN_ASSERT_INT(p[1].addr.port, ==, 24100);
    TN_ASSERT_INT(parse("{\"peers\": [{\"addr\": \"1.2.3.4:5\", \"id\": "
                        "\"0101010101010101010101010101010101010101010101010101010101010101\","
                        " \"x\": 1}], \"ok\": true}",
                        p, err),
                  ==, 1);
    TN_ASSERT(p[0].has_id && p[0].id[31] == 1);
    TN_ASSERT_INT(parse(" [ ] \n", p, err), ==, 0);
    static const char *const bad[] = {
        "",                                                          /* empty */
        "[\"1.2.3.4:5\"",                                            /* unterminated */
        "[\"1.2.3.4:5\"] x",                                         /* trailing bytes */
        "{\"peers\": 5}",                                            /* wrong type */
        "\"1.2.3.4:5\"",                                             /* not a list */
        "[1]",                                                       /* item type */
        "[\"1.2.3.4\"]",                                             /* no port */
        "[\"1.2.3.4:0\"]",                                           /* port 0 */
        "[\"localhost:5\"]",                                         /* a name, not an IP */
        "[{\"addr\": \"1.2.3.4:5\", \"id\": \"abc\"}]",              /* short id */
        "[\"1.1.1.1:1\",\"1.1.1.1:2\",\"1.1.1.1:3\",\"1.1.1.1:4\"]", /* more than max */
    };
    for (size_t i = 0; i < TN_ARRAY_LEN(bad); i++)
        if (parse(bad[i], p, err) != TN_EINVAL) TN_FAIL("accepted %s", bad[i]);
    const char nul[] = "[\"1.2.3.4:5\"]\0[]";
    TN_ASSERT_INT(tn_peerapi_parse(nul, sizeof nul - 1, p, 3, err, sizeof err), ==, TN_EINVAL);
    TN_ASSERT(strstr(err, "NUL") != NULL);
}
