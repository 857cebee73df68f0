/* Redial delays (tn_backoff_ms): the seed's 5-10-30-60-300 s ladder, a long cooldown
 * instead of giving up forever, and every duration scaled by reconnect_delay. */
#include "tn_config.h"
#include "tn_node.h"
#include "tn_test.h"

TN_TEST(backoff_defaults)
{
    tn_config_t c;
    TN_ASSERT_OK(tn_config_defaults(&c));
    static const uint64_t want_s[] = {5, 10, 30, 60, 300, 300, 300, 300, 300, 300};
    bool gave_up = true;
    for (uint32_t f = 0; f < TN_ARRAY_LEN(want_s); f++) {
        uint64_t ms = tn_backoff_ms(&c, f, &gave_up);
        if (ms != want_s[f] * 1000 || gave_up)
            TN_FAIL("after %u failures: %llu ms gave_up=%d, want %llu s", f, (unsigned long long)ms,
                    gave_up, (unsigned long long)want_s[f]);
    }
    /* reconnect_max_attempts = 10: the 10th failure starts the one-hour cooldown. */
    TN_ASSERT_U64(tn_backoff_ms(&c, 10, &gave_up), ==, 3600 * 1000);
    TN_ASSERT(gave_up);
    gave_up = false;
    TN_ASSERT_U64(tn_backoff_ms(&c, 11, &gave_up), ==, 3600 * 1000);
    TN_ASSERT(gave_up);
    TN_ASSERT_U64(tn_backoff_ms(&c, UINT32_MAX, &gave_up), ==, 3600 * 1000);
    TN_ASSERT(gave_up);
    tn_config_free(&c);
}

TN_TEST(backoff_scaled_by_reconnect_delay)
{
    /* Test networks run the same ladder at a fraction of the time. */
    tn_config_t c;
    TN_ASSERT_OK(tn_config_defaults(&c));
    c.reconnect_delay = 0.05;
    c.reconnect_cooldown = 2;
    c.reconnect_max_attempts = 3;
    static const uint64_t want_ms[] = {50, 100, 300};
    bool gave_up;
    for (uint32_t f = 0; f < 3; f++) {
        TN_ASSERT_U64(tn_backoff_ms(&c, f, &gave_up), ==, want_ms[f]);
        TN_ASSERT(!gave_up);
    }
    TN_ASSERT_U64(tn_backoff_ms(&c, 3, &gave_up), ==, 2000);
    TN_ASSERT(gave_up);
    /* A delay below a millisecond still waits one millisecond. */
    c.reconnect_delay = 0.0001;
    TN_ASSERT_U64(tn_backoff_ms(&c, 0, &gave_up), ==, 1);
    tn_config_free(&c);
}

TN_TEST(backoff_from_config_file)
{
    tn_config_t c;
    char err[512];
    const char *path = tn_test_tmpfile("reconnect_delay = 2\nreconnect_backoff = { 1, 3 }\n"
                                       "reconnect_max_attempts = 4\nreconnect_cooldown = 60\n",
                                       ".lua");
    TN_ASSERT_OK(tn_config_defaults(&c));
    if (tn_config_load(&c, path, err, sizeof err)) TN_FAIL("load: %s", err);
    bool gave_up;
    TN_ASSERT_U64(tn_backoff_ms(&c, 0, &gave_up), ==, 2000);
    TN_ASSERT_U64(tn_backoff_ms(&c, 1, &gave_up), ==, 6000);
    TN_ASSERT_U64(tn_backoff_ms(&c, 2, &gave_up), ==, 6000); /* the last entry repeats */
    TN_ASSERT_U64(tn_backoff_ms(&c, 3, &gave_up), ==, 6000);
    TN_ASSERT(!gave_up);
    TN_ASSERT_U64(tn_backoff_ms(&c, 4, &gave_up), ==, 60000);
    TN_ASSERT(gave_up);
    tn_config_free(&c);
}
