/* Addresses (tn_addr.h): text forms peers and operators type, and the local/public split
 * peer exchange relies on. */
#include "tn_addr.h"
#include "tn_test.h"

#include <netinet/in.h>

static void roundtrip(const char *in, const char *want_fmt, uint16_t port, bool v4)
{
    tn_addr_t a;
    char out[TN_ADDR_STRLEN];
    int rc = tn_addr_parse(in, &a);
    if (rc) TN_FAIL("tn_addr_parse(\"%s\") = %s", in, tn_strerror(rc));
    tn_addr_fmt(&a, out);
    if (strcmp(out, want_fmt)) TN_FAIL("\"%s\" formats as \"%s\", want \"%s\"", in, out, want_fmt);
    if (a.port != port) TN_FAIL("\"%s\" port %u, want %u", in, a.port, port);
    if (tn_addr_is_v4(&a) != v4) TN_FAIL("\"%s\" is_v4 = %d", in, tn_addr_is_v4(&a));
}

TN_TEST(addr_parse_ipv4)
{
    roundtrip("1.2.3.4:24100", "1.2.3.4:24100", 24100, true);
    roundtrip("127.0.0.1:0", "127.0.0.1:0", 0, true);
    roundtrip("255.255.255.255:65535", "255.255.255.255:65535", 65535, true);
    tn_addr_t a;
    TN_ASSERT_OK(tn_addr_parse("10.20.30.40:5", &a));
    static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 20, 30, 40};
    TN_ASSERT_MEM_EQ(a.ip, mapped, 16); /* IPv4 is held v4-mapped */
}

TN_TEST(addr_parse_ipv6_brackets)
{
    roundtrip("[::1]:24100", "[::1]:24100", 24100, false);
    roundtrip("[2001:db8::1]:8333", "[2001:db8::1]:8333", 8333, false);
    roundtrip("[2001:0DB8:0000::0001]:1", "[2001:db8::1]:1", 1, false); /* canonical form */
    roundtrip("[fe80::1:2:3:4]:9", "[fe80::1:2:3:4]:9", 9, false);
    /* A v4-mapped IPv6 address is the IPv4 address. */
    roundtrip("[::ffff:1.2.3.4]:7", "1.2.3.4:7", 7, true);
    tn_addr_t a, b;
    TN_ASSERT_OK(tn_addr_parse("[::ffff:1.2.3.4]:7", &a));
    TN_ASSERT_OK(tn_addr_parse("1.2.3.4:7", &b));
    TN_ASSERT(tn_addr_eq(&a, &b));
}

TN_TEST(addr_parse_rejects_bad_input)
{
    static const char *bad[] = {
        "",
        "1.2.3.4",       /* no port */
        "1.2.3.4:",      /* empty port */
        "1.2.3.4:65536", /* port too big */
        "1.2.3.4:-1",    /* negative */
        "1.2.3.4:+1",    /* sign */
        "1.2.3.4: 80",   /* space */
        "1.2.3.4:80x",   /* trailing junk */
        "1.2.3.4:99999999999999999999999",
        "1.2.3.256:80", /* octet out of range */
        "1.2.3:80",     /* short IPv4 */
        "localhost:80", /* host names are not addresses */
        "::1:80",       /* bare IPv6 needs brackets */
        "[::1]",        /* no port */
        "[::1]:",       /* empty port */
        "[::1]80",      /* missing colon */
        "[::1",         /* unclosed */
        "[::g]:80",     /* not hex */
        "[1:2:3:4:5:6:7:8:9]:80",
        "[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000]:1", /* too long */
        ":80",
    };
    for (size_t i = 0; i < TN_ARRAY_LEN(bad); i++) {
        tn_addr_t a;
        int rc = tn_addr_parse(bad[i], &a);
        if (rc != TN_EINVAL) TN_FAIL("tn_addr_parse(\"%s\") = %d, want TN_EINVAL", bad[i], rc);
    }
    tn_addr_t a;
    TN_ASSERT_RC(tn_addr_parse(NULL, &a), TN_EINVAL);
}

TN_TEST(addr_parse_ip_without_port)
{
    tn_addr_t a;
    char out[TN_ADDR_STRLEN];
    TN_ASSERT_OK(tn_addr_parse_ip("192.168.1.10", &a));
    TN_ASSERT_INT(a.port, ==, 0);
    tn_addr_fmt_ip(&a, out);
    TN_ASSERT_STR_EQ(out, "192.168.1.10");
    TN_ASSERT_OK(tn_addr_parse_ip("2001:db8::7", &a));
    tn_addr_fmt_ip(&a, out);
    TN_ASSERT_STR_EQ(out, "2001:db8::7");
    TN_ASSERT_RC(tn_addr_parse_ip("1.2.3.4:5", &a), TN_EINVAL);
    TN_ASSERT_RC(tn_addr_parse_ip("[::1]", &a), TN_EINVAL);
    TN_ASSERT_RC(tn_addr_parse_ip("", &a), TN_EINVAL);
    TN_ASSERT_RC(tn_addr_parse_ip("example.com", &a), TN_EINVAL);
}

TN_TEST(addr_compare)
{
    tn_addr_t a, b, c;
    TN_ASSERT_OK(tn_addr_parse("1.2.3.4:1", &a));
    TN_ASSERT_OK(tn_addr_parse("1.2.3.4:2", &b));
    TN_ASSERT_OK(tn_addr_parse("1.2.3.5:1", &c));
    TN_ASSERT(!tn_addr_eq(&a, &b));
    TN_ASSERT(tn_addr_same_ip(&a, &b));
    TN_ASSERT(!tn_addr_same_ip(&a, &c));
}

static bool local(const char *ip)
{
    tn_addr_t a;
    if (tn_addr_parse_ip(ip, &a)) TN_FAIL("cannot parse %s", ip);
    return tn_addr_is_local(&a);
}

TN_TEST(addr_is_local)
{
    static const char *yes[] = {"127.0.0.1",   "127.255.0.9",    "10.0.0.1",
                                "172.16.0.1",  "172.31.255.255", "192.168.0.1",
                                "169.254.1.1", "100.64.0.1",     "100.127.255.255",
                                "0.0.0.0",     "0.1.2.3",        "::1",
                                "::",          "fc00::1",        "fd12:3456::1",
                                "fe80::1",     "febf::1",        "::ffff:10.1.2.3"};
    static const char *no[] = {"8.8.8.8",     "1.2.3.4",       "172.15.255.255", "172.32.0.1",
                               "192.167.1.1", "169.253.1.1",   "100.63.255.255", "100.128.0.1",
                               "11.0.0.1",    "2001:db8::1",   "2a00:1450::1",   "fec0::1",
                               "::2",         "::ffff:8.8.4.4"};
    for (size_t i = 0; i < TN_ARRAY_LEN(yes); i++)
        if (!local(yes[i])) TN_FAIL("%s should be local", yes[i]);
    for (size_t i = 0; i < TN_ARRAY_LEN(no); i++)
        if (local(no[i])) TN_FAIL("%s should not be local", no[i]);
}

TN_TEST(addr_is_any)
{
    tn_addr_t a;
    TN_ASSERT_OK(tn_addr_parse("0.0.0.0:1", &a));
    TN_ASSERT(tn_addr_is_any(&a));
    TN_ASSERT_OK(tn_addr_parse("[::]:1", &a));
    TN_ASSERT(tn_addr_is_any(&a));
    TN_ASSERT_OK(tn_addr_parse("127.0.0.1:1", &a));
    TN_ASSERT(!tn_addr_is_any(&a));
}

TN_TEST(addr_sockaddr_roundtrip)
{
    static const char *in[] = {"1.2.3.4:80", "[2001:db8::5]:443", "127.0.0.7:24100"};
    for (size_t i = 0; i < TN_ARRAY_LEN(in); i++) {
        tn_addr_t a, b;
        struct sockaddr_storage ss;
        TN_ASSERT_OK(tn_addr_parse(in[i], &a));
        tn_addr_to_sockaddr(&a, &ss);
        TN_ASSERT_INT(ss.ss_family, ==, tn_addr_is_v4(&a) ? AF_INET : AF_INET6);
        TN_ASSERT_OK(tn_addr_from_sockaddr((struct sockaddr *)&ss, &b));
        TN_ASSERT(tn_addr_eq(&a, &b));
    }
    struct sockaddr_in s4;
    memset(&s4, 0, sizeof s4);
    s4.sin_family = AF_INET;
    s4.sin_port = htons(24100);
    s4.sin_addr.s_addr = htonl(0x7f000001);
    tn_addr_t a;
    char out[TN_ADDR_STRLEN];
    TN_ASSERT_OK(tn_addr_from_sockaddr((struct sockaddr *)&s4, &a));
    tn_addr_fmt(&a, out);
    TN_ASSERT_STR_EQ(out, "127.0.0.1:24100");
    struct sockaddr un = {.sa_family = AF_UNIX};
    TN_ASSERT_RC(tn_addr_from_sockaddr(&un, &a), TN_EINVAL);
}

TN_TEST(addr_format_longest_ipv6_fits)
{
    tn_addr_t a;
    char out[TN_ADDR_STRLEN];
    TN_ASSERT_OK(tn_addr_parse("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535", &a));
    tn_addr_fmt(&a, out);
    TN_ASSERT_STR_EQ(out, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535");
}
