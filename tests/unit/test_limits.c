/* Rate limits (tn_limits.h): token buckets refill at their rate up to their burst and let a
 * message larger than what is left through once, as a debt; message classes and costs; the
 * per-IP attempt table counts within a window, restarts it, stays bounded and keeps a
 * flooding IP counted while others come and go. */
#include "tn_limits.h"
#include "tn_proto.h"
#include "tn_test.h"

#include <sodium.h>

#define T0 1000000 /* loop time in ms: never 0 (0 marks an unused bucket) */

TN_TEST(bucket_starts_full_and_refills_at_its_rate)
{
    tn_bucket_t b = {0};
    double rate = 100.0 / 60000.0; /* 100 a minute */
    int taken = 0;
    while (tn_bucket_take(&b, rate, 100, T0, 1)) taken++;
    TN_ASSERT_INT(taken, ==, 100);                          /* the burst, at once */
    TN_ASSERT(!tn_bucket_take(&b, rate, 100, T0 + 100, 1)); /* 1/6 of a token later: none */
    TN_ASSERT(tn_bucket_take(&b, rate, 100, T0 + 601, 1));  /* one token per 600 ms */
    TN_ASSERT(!tn_bucket_take(&b, rate, 100, T0 + 601, 1));
    /* a long quiet period refills to the burst, never beyond */
    TN_ASSERT_DBL(tn_bucket_level(&b, rate, 100, T0 + 3600000), ==, 100);
}

TN_TEST(bucket_lets_a_large_message_through_as_a_debt)
{
    tn_bucket_t b = {0};
    double rate = 1.0;                                  /* 1000 a second */
    TN_ASSERT(tn_bucket_take(&b, rate, 500, T0, 1000)); /* larger than the burst: not stuck */
    TN_ASSERT_DBL(b.tokens, ==, -500);
    TN_ASSERT(!tn_bucket_take(&b, rate, 500, T0 + 500, 1)); /* the debt is paid first */
    TN_ASSERT(tn_bucket_take(&b, rate, 500, T0 + 501, 1));
}

TN_TEST(bucket_average_rate_holds_over_time)
{
    tn_bucket_t b = {0};
    double rate = 5.0; /* 5000 a second, burst 20000: the inventory default */
    uint64_t passed = 0;
    for (uint64_t ms = 0; ms < 10000; ms++) /* a peer offering 100 ids every ms for 10 s */
        if (tn_bucket_take(&b, rate, 20000, T0 + ms, 100)) passed += 100;
    TN_ASSERT_U64(passed, >=, 20000 + 5 * 9999 - 100);
    TN_ASSERT_U64(passed, <=, 20000 + 5 * 10000 + 100);
}

TN_TEST(message_classes_and_costs)
{
    TN_ASSERT_INT(tn_rate_class(TN_MSG_PING), ==, TN_RC_HEARTBEAT);
    TN_ASSERT_INT(tn_rate_class(TN_MSG_PONG), ==, TN_RC_HEARTBEAT);
    TN_ASSERT_INT(tn_rate_class(TN_MSG_HELLO), ==, TN_RC_CONTROL);
    TN_ASSERT_INT(tn_rate_class(TN_MSG_GET_HEIGHT), ==, TN_RC_CONTROL);
    TN_ASSERT_INT(tn_rate_class(TN_MSG_GET_MEMPOOL), ==, TN_RC_CONTROL);
    TN_ASSERT_INT(tn_rate_class(TN_MSG_INV), ==, TN_RC_INVENTORY);
    TN_ASSERT_INT(tn_rate_class(TN_MSG_TX), ==, TN_RC_INVENTORY);
    TN_ASSERT_INT(tn_rate_class(TN_MSG_BLOCKS), ==, TN_RC_BLOCKS);
    TN_ASSERT_INT(tn_rate_class(TN_MSG_GET_PEERS), ==, TN_RC_ADDRESSES);
    TN_ASSERT_INT(tn_rate_class(TN_MSG_PEERS), ==, TN_RC_ADDRESSES);
    TN_ASSERT_INT(tn_rate_class(0x7fff), ==, TN_RC_CONTROL);
    TN_ASSERT_INT(tn_rate_class(0x8001), ==, TN_RC_CUSTOM);
    TN_ASSERT_INT(tn_rate_class(0xffff), ==, TN_RC_CUSTOM);
    TN_ASSERT_STR_EQ(tn_rate_class_name(TN_RC_INVENTORY), "inventory");
    uint8_t inv[2] = {0x03, 0xe8}; /* 1000 ids */
    TN_ASSERT_INT(tn_rate_cost(TN_MSG_INV, inv, 2), ==, 1000);
    TN_ASSERT_INT(tn_rate_cost(TN_MSG_GETDATA, inv, 2), ==, 1000);
    TN_ASSERT_INT(tn_rate_cost(TN_MSG_INV, inv, 1), ==, 1); /* malformed: judged elsewhere */
    uint8_t none[2] = {0, 0};
    TN_ASSERT_INT(tn_rate_cost(TN_MSG_INV, none, 2), ==, 1);
    TN_ASSERT_INT(tn_rate_cost(TN_MSG_TX, inv, 2), ==, 1);
}

static tn_addr_t ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    tn_addr_t x;
    char s[32];
    snprintf(s, sizeof s, "%u.%u.%u.%u", a, b, c, d);
    tn_addr_parse_ip(s, &x);
    return x;
}

TN_TEST(attempts_count_per_ip_within_the_window)
{
    tn_attempts_t t;
    TN_ASSERT_OK(tn_attempts_init(&t));
    tn_addr_t a = ip4(10, 0, 0, 1), b = ip4(10, 0, 0, 2);
    for (uint32_t i = 1; i <= 12; i++)
        TN_ASSERT_INT(tn_attempts_count(&t, &a, T0 + i, 60000), ==, i);
    TN_ASSERT_INT(tn_attempts_count(&t, &b, T0 + 20, 60000), ==, 1); /* its own count */
    /* the window restarts at the first attempt after it ended */
    TN_ASSERT_INT(tn_attempts_count(&t, &a, T0 + 1 + 60000, 60000), ==, 1);
    TN_ASSERT_INT(tn_attempts_count(&t, &a, T0 + 2 + 60000, 60000), ==, 2);
    tn_attempts_free(&t);
}

TN_TEST(attempts_table_is_bounded_and_keeps_a_flooder_counted)
{
    tn_attempts_t t;
    TN_ASSERT_OK(tn_attempts_init(&t));
    tn_addr_t flooder = ip4(192, 0, 2, 1);
    uint64_t now = T0;
    uint32_t k = 0;
    /* 100000 other IPs, one attempt each, spread over 10 s, while the flooder keeps trying:
     * the table holds 4096, yet the IP that is counted at every turn is the most recent in
     * its set and never the one taken */
    for (int i = 0; i < 100000; i++) {
        tn_addr_t x = ip4(10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
        tn_attempts_count(&t, &x, now, 60000);
        if (i % 100 == 0) k = tn_attempts_count(&t, &flooder, now, 60000);
        if (i % 10000 == 0) now += 1000;
    }
    TN_ASSERT_INT(k, ==, 1000);
    TN_ASSERT_U64(t.evicted, >, 0);
    int used = 0;
    for (int i = 0; i < TN_ATTEMPT_SETS * TN_ATTEMPT_WAYS; i++) used += t.slots[i].count > 0;
    TN_ASSERT_INT(used, <=, TN_ATTEMPT_SETS * TN_ATTEMPT_WAYS);
    tn_attempts_free(&t);
}
