/* Bans in memory (tn_bans.c): found by IP through the hash index after adds, removals, the
 * eviction at TN_BANS_MAX and a clear; never for a whitelisted IP; expired ones are kept
 * (their count escalates repeat offenders) but no longer active. */
#include "tn_log.h"
#include "tn_node.h"
#include "tn_test.h"

#include <stdio.h>
#include <stdlib.h>

static tn_addr_t ip(uint32_t i)
{
    tn_addr_t a;
    char s[64];
    snprintf(s, sizeof s, "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    tn_addr_parse_ip(s, &a);
    return a;
}

static void node_init(tn_node_t *n, tn_config_t *cfg)
{
    memset(n, 0, sizeof(*n));
    TN_ASSERT_OK(tn_config_defaults(cfg));
    n->cfg = cfg;
    tn_log_init("unit", TN_LOG_ERROR, 0, stderr); /* no line per ban on the test's output */
}

TN_TEST(bans_found_by_ip_after_adds_and_removals)
{
    tn_node_t n;
    tn_config_t cfg;
    node_init(&n, &cfg);
    for (uint32_t i = 0; i < 1000; i++) tn_bans_add(&n, (tn_addr_t[]){ip(i)}, 300, "unit");
    TN_ASSERT_INT(n.n_bans, ==, 1000);
    for (uint32_t i = 0; i < 1000; i++) TN_ASSERT(tn_bans_active(&n, (tn_addr_t[]){ip(i)}));
    TN_ASSERT(!tn_bans_active(&n, (tn_addr_t[]){ip(1000)}));
    /* removals move the last ban into the hole: every other one is still found */
    for (uint32_t i = 0; i < 1000; i += 3) TN_ASSERT_OK(tn_bans_remove(&n, (tn_addr_t[]){ip(i)}));
    for (uint32_t i = 0; i < 1000; i++)
        TN_ASSERT_INT(tn_bans_active(&n, (tn_addr_t[]){ip(i)}), ==, i % 3 != 0);
    TN_ASSERT_RC(tn_bans_remove(&n, (tn_addr_t[]){ip(0)}), TN_ENOTFOUND);
    /* an expired ban is kept but not active */
    tn_bans_add(&n, (tn_addr_t[]){ip(5000)}, 0.001, "short");
    TN_ASSERT_INT(n.n_bans, ==, 667);
    uint64_t until = tn_wall_ms() + 50;
    while (tn_wall_ms() < until) {
    }
    TN_ASSERT(!tn_bans_active(&n, (tn_addr_t[]){ip(5000)}));
    TN_ASSERT_INT(tn_bans_clear(&n), ==, 666);
    TN_ASSERT(!tn_bans_active(&n, (tn_addr_t[]){ip(1)}));
    tn_bans_add(&n, (tn_addr_t[]){ip(1)}, 300, "again");
    TN_ASSERT(tn_bans_active(&n, (tn_addr_t[]){ip(1)}));
    tn_bans_free(&n);
    tn_config_free(&cfg);
}

TN_TEST(bans_bounded_the_one_closest_to_its_end_goes)
{
    tn_node_t n;
    tn_config_t cfg;
    node_init(&n, &cfg);
    tn_bans_add(&n, (tn_addr_t[]){ip(0)}, 10, "soonest");
    for (uint32_t i = 1; i < TN_BANS_MAX; i++) tn_bans_add(&n, (tn_addr_t[]){ip(i)}, 3600, "unit");
    TN_ASSERT_INT(n.n_bans, ==, TN_BANS_MAX);
    tn_bans_add(&n, (tn_addr_t[]){ip(TN_BANS_MAX)}, 3600, "one more");
    TN_ASSERT_INT(n.n_bans, ==, TN_BANS_MAX);
    TN_ASSERT(!tn_bans_active(&n, (tn_addr_t[]){ip(0)}));
    TN_ASSERT(tn_bans_active(&n, (tn_addr_t[]){ip(TN_BANS_MAX)}));
    TN_ASSERT(tn_bans_active(&n, (tn_addr_t[]){ip(TN_BANS_MAX - 1)}));
    TN_ASSERT(tn_bans_active(&n, (tn_addr_t[]){ip(1)}));
    tn_bans_free(&n);
    tn_config_free(&cfg);
}

TN_TEST(bans_never_a_whitelisted_ip)
{
    tn_node_t n;
    tn_config_t cfg;
    node_init(&n, &cfg);
    char *w = strdup("10.0.0.7");
    cfg.whitelist.v = &w;
    cfg.whitelist.n = 1;
    tn_bans_add(&n, (tn_addr_t[]){ip(7)}, 300, "unit");
    TN_ASSERT(!tn_bans_active(&n, (tn_addr_t[]){ip(7)}));
    cfg.whitelist.v = NULL;
    cfg.whitelist.n = 0;
    free(w);
    tn_bans_free(&n);
    tn_config_free(&cfg);
}
