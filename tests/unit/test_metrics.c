/* Metrics registry and Prometheus text (tn_metrics.h). Each test runs in its own process,
 * so each starts with an empty registry. */
#include "tn_metrics.h"
#include "tn_test.h"

#include <stdio.h>

static char *exposition(tn_buf_t *b)
{
    tn_buf_init(b, 1 << 20);
    TN_ASSERT_OK(tn_metrics_prometheus(b));
    TN_ASSERT_OK(tn_buf_append(b, "", 1));
    return (char *)b->p;
}

TN_TEST(metrics_same_name_same_object)
{
    tn_metric_t *a = tn_metric_counter("tn_x_total", "X");
    tn_metric_t *b = tn_metric_counter("tn_x_total", "X again");
    TN_ASSERT_PTR_EQ(a, b);
    tn_metric_inc(a);
    tn_metric_add(b, 2);
    TN_ASSERT_DBL(tn_metrics_value("tn_x_total"), ==, 3);
    tn_metric_t *c = tn_metric_counterf("X", "tn_x_total{type=\"%s\"}", "ping");
    TN_ASSERT(c != a); /* another label value is another series */
    TN_ASSERT_PTR_EQ(c, tn_metric_counter("tn_x_total{type=\"ping\"}", NULL));
    tn_metric_t *g = tn_metric_gauge("tn_g", "G");
    tn_metric_set(g, 5);
    tn_metric_set(g, 2);
    TN_ASSERT_DBL(tn_metrics_value("tn_g"), ==, 2);
    TN_ASSERT_DBL(tn_metrics_value("tn_absent"), ==, 0);
    TN_ASSERT_INT(tn_metrics_count(), ==, 3);
    TN_ASSERT_STR_EQ(tn_metrics_at(0)->name, "tn_x_total");
    TN_ASSERT(tn_metrics_at(3) == NULL);
    TN_ASSERT(tn_metrics_at(-1) == NULL);
}

TN_TEST(metrics_prometheus_text)
{
    tn_metric_add(tn_metric_counter("tn_test_events_total{kind=\"a\"}", "Test events by kind"), 3);
    tn_metric_inc(tn_metric_counter("tn_test_events_total{kind=\"b\"}", NULL));
    tn_metric_set(tn_metric_gauge("tn_test_peers", "Peers"), 7);
    static const double bounds[] = {1, 5, 10};
    tn_metric_t *h = tn_metric_histogram("tn_test_rtt_ms", "RTT", bounds, 3);
    static const double obs[] = {0.5, 3, 3, 5, 7, 100};
    for (size_t k = 0; k < TN_ARRAY_LEN(obs); k++) tn_metric_observe(h, obs[k]);
    static const double b2[] = {2};
    tn_metric_t *hl = tn_metric_histogram("tn_test_lat{peer=\"x\"}", "Latency", b2, 1);
    tn_metric_observe(hl, 1);
    tn_metric_observe(hl, 3);
    TN_ASSERT_DBL(tn_metrics_value("tn_test_rtt_ms"), ==, 6); /* a histogram's count */
    tn_buf_t b;
    const char *text = exposition(&b);
    TN_ASSERT_STR_EQ(text, "# HELP tn_test_events_total Test events by kind\n"
                           "# TYPE tn_test_events_total counter\n"
                           "tn_test_events_total{kind=\"a\"} 3\n"
                           "tn_test_events_total{kind=\"b\"} 1\n"
                           "# HELP tn_test_peers Peers\n"
                           "# TYPE tn_test_peers gauge\n"
                           "tn_test_peers 7\n"
                           "# HELP tn_test_rtt_ms RTT\n"
                           "# TYPE tn_test_rtt_ms histogram\n"
                           "tn_test_rtt_ms_bucket{le=\"1\"} 1\n"
                           "tn_test_rtt_ms_bucket{le=\"5\"} 4\n" /* cumulative, le inclusive */
                           "tn_test_rtt_ms_bucket{le=\"10\"} 5\n"
                           "tn_test_rtt_ms_bucket{le=\"+Inf\"} 6\n"
                           "tn_test_rtt_ms_sum 118.5\n"
                           "tn_test_rtt_ms_count 6\n"
                           "# HELP tn_test_lat Latency\n"
                           "# TYPE tn_test_lat histogram\n"
                           "tn_test_lat_bucket{peer=\"x\",le=\"2\"} 1\n"
                           "tn_test_lat_bucket{peer=\"x\",le=\"+Inf\"} 2\n"
                           "tn_test_lat_sum{peer=\"x\"} 4\n"
                           "tn_test_lat_count{peer=\"x\"} 2\n");
    tn_buf_free(&b);
}

TN_TEST(metrics_family_lines_grouped)
{
    /* Series of one family registered at different times (a label value seen later) still
     * come out as one group under one HELP/TYPE, as the exposition format requires. */
    tn_metric_inc(tn_metric_counter("tn_strikes_total{kind=\"magic\"}", "Strikes"));
    tn_metric_inc(tn_metric_counter("tn_pongs_missed_total", "Missed"));
    tn_metric_inc(tn_metric_counter("tn_strikes_total{kind=\"frame\"}", "Strikes"));
    tn_buf_t b;
    const char *text = exposition(&b);
    TN_ASSERT_STR_EQ(text, "# HELP tn_strikes_total Strikes\n"
                           "# TYPE tn_strikes_total counter\n"
                           "tn_strikes_total{kind=\"magic\"} 1\n"
                           "tn_strikes_total{kind=\"frame\"} 1\n"
                           "# HELP tn_pongs_missed_total Missed\n"
                           "# TYPE tn_pongs_missed_total counter\n"
                           "tn_pongs_missed_total 1\n");
    tn_buf_free(&b);
}

TN_TEST(metrics_histogram_bounds_capped)
{
    double bounds[TN_HIST_MAX_BUCKETS + 4];
    for (int k = 0; k < TN_HIST_MAX_BUCKETS + 4; k++) bounds[k] = k + 1;
    tn_metric_t *h = tn_metric_histogram("tn_h", "H", bounds, TN_HIST_MAX_BUCKETS + 4);
    TN_ASSERT_INT(h->nbuckets, ==, TN_HIST_MAX_BUCKETS);
    tn_metric_observe(h, 1000); /* above every bound: +Inf */
    TN_ASSERT_U64(h->counts[TN_HIST_MAX_BUCKETS], ==, 1);
    /* Registering again does not change the buckets. */
    static const double other[] = {0.5};
    TN_ASSERT_PTR_EQ(tn_metric_histogram("tn_h", "H", other, 1), h);
    TN_ASSERT_DBL(h->bounds[0], ==, 1);
}

TN_TEST(metrics_registry_bounded)
{
    /* Past TN_METRICS_MAX names (or an over-long name) every new name shares one overflow
     * slot instead of growing the table. */
    tn_metric_t *first_overflow = NULL;
    for (int k = 0; k < TN_METRICS_MAX + 50; k++) {
        char name[64];
        snprintf(name, sizeof name, "tn_m_%d_total", k);
        tn_metric_t *m = tn_metric_counter(name, "M");
        TN_ASSERT(m != NULL);
        if (k >= TN_METRICS_MAX) {
            if (!first_overflow) first_overflow = m;
            TN_ASSERT_PTR_EQ(m, first_overflow);
        }
    }
    TN_ASSERT_INT(tn_metrics_count(), ==, TN_METRICS_MAX);
    char longname[TN_METRIC_NAME_MAX + 10];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    TN_ASSERT_PTR_EQ(tn_metric_counter(longname, "L"), first_overflow);
    tn_buf_t b;
    const char *text = exposition(&b);
    TN_ASSERT_INT(tn_test_count_lines(text), ==, 3 * TN_METRICS_MAX);
    tn_buf_free(&b);
}
