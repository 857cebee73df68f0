/* The metrics registry: counters, gauges and histograms registered by name in one table.
 * A name may carry Prometheus labels (`tn_msgs_in_total{type="ping"}`); registering the
 * same name twice returns the same metric. Loop thread only; updates are plain adds. */
#ifndef TN_METRICS_H
#define TN_METRICS_H

#include "tn_buf.h"
#include "tn_common.h"

#define TN_METRICS_MAX 1024 /* registry bound; further names share one overflow slot */
#define TN_METRIC_NAME_MAX 128
#define TN_HIST_MAX_BUCKETS 16

typedef enum { TN_METRIC_COUNTER, TN_METRIC_GAUGE, TN_METRIC_HISTOGRAM } tn_metric_kind_t;

typedef struct {
    char name[TN_METRIC_NAME_MAX];
    const char *help;
    tn_metric_kind_t kind;
    double value; /* counter or gauge */
    /* histogram */
    int nbuckets;
    double bounds[TN_HIST_MAX_BUCKETS];
    uint64_t counts[TN_HIST_MAX_BUCKETS + 1]; /* last = +Inf */
    double sum;
    uint64_t count;
} tn_metric_t;

tn_metric_t *tn_metric_counter(const char *name, const char *help);
tn_metric_t *tn_metric_gauge(const char *name, const char *help);
/* bounds ascending, at most TN_HIST_MAX_BUCKETS */
tn_metric_t *tn_metric_histogram(const char *name, const char *help, const double *bounds, int n);
/* Printf-style name, for labelled families: tn_metric_counterf(help, "x{type=\"%s\"}", t) */
tn_metric_t *tn_metric_counterf(const char *help, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void tn_metric_add(tn_metric_t *m, double v)
{
    m->value += v;
}
static inline void tn_metric_inc(tn_metric_t *m)
{
    m->value += 1;
}
static inline void tn_metric_set(tn_metric_t *m, double v)
{
    m->value = v;
}
void tn_metric_observe(tn_metric_t *m, double v);

/* Value by exact name (tests and the status verb); 0 when absent. */
double tn_metrics_value(const char *name);
int tn_metrics_count(void);
const tn_metric_t *tn_metrics_at(int i);
/* Prometheus text exposition of every metric. */
int tn_metrics_prometheus(tn_buf_t *out);

#endif
