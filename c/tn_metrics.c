/* Metrics registry (see tn_metrics.h). Linear lookup is fine: registration happens at
 * start-up or once per new label value, never per message. */
#include "tn_metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static tn_metric_t g_metrics[TN_METRICS_MAX];
static int g_n;
static tn_metric_t g_overflow = {.name = "tn_metrics_overflow", .kind = TN_METRIC_COUNTER};

static tn_metric_t *reg(const char *name, const char *help, tn_metric_kind_t kind)
{
    for (int i = 0; i < g_n; i++)
        if (strcmp(g_metrics[i].name, name) == 0) return &g_metrics[i];
    if (g_n == TN_METRICS_MAX || strlen(name) >= TN_METRIC_NAME_MAX) return &g_overflow;
    tn_metric_t *m = &g_metrics[g_n++];
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof m->name, "%s", name);
    m->help = help;
    m->kind = kind;
    return m;
}

tn_metric_t *tn_metric_counter(const char *name, const char *help)
{
    return reg(name, help, TN_METRIC_COUNTER);
}

tn_metric_t *tn_metric_gauge(const char *name, const char *help)
{
    return reg(name, help, TN_METRIC_GAUGE);
}

tn_metric_t *tn_metric_counterf(const char *help, const char *fmt, ...)
{
    char name[TN_METRIC_NAME_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return reg(name, help, TN_METRIC_COUNTER);
}

tn_metric_t *tn_metric_histogram(const char *name, const char *help, const double *bounds, int n)
{
    tn_metric_t *m = reg(name, help, TN_METRIC_HISTOGRAM);
    if (m != &g_overflow && m->nbuckets == 0) {
        m->nbuckets = TN_MIN(n, TN_HIST_MAX_BUCKETS);
        memcpy(m->bounds, bounds, sizeof(double) * (size_t)m->nbuckets);
    }
    return m;
}

void tn_metric_observe(tn_metric_t *m, double v)
{
    int i = 0;
    while (i < m->nbuckets && v > m->bounds[i]) i++;
    m->counts[i]++;
    m->sum += v;
    m->count++;
}

double tn_metrics_value(const char *name)
{
    for (int i = 0; i < g_n; i++)
        if (strcmp(g_metrics[i].name, name) == 0)
            return g_metrics[i].kind == TN_METRIC_HISTOGRAM ? (double)g_metrics[i].count
                                                            : g_metrics[i].value;
    return 0;
}

int tn_metrics_count(void)
{
    return g_n;
}
const tn_metric_t *tn_metrics_at(int i)
{
    return i >= 0 && i < g_n ? &g_metrics[i] : NULL;
}

static int appendf(tn_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int appendf(tn_buf_t *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return TN_EINVAL;
    return tn_buf_append(b, tmp, (size_t)TN_MIN(n, (int)sizeof tmp - 1));
}

/* Shortest text that reads back as v (0.0025, not 0.0025000000000000001). */
static const char *num(char out[32], double v)
{
    if (isnan(v)) return "NaN";
    if (isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    snprintf(out, 32, "%.15g", v);
    if (strtod(out, NULL) != v) snprintf(out, 32, "%.17g", v);
    return out;
}

/* family = name without labels; labels = the text inside braces or "" */
static void split(const char *name, char *family, char *labels)
{
    const char *brace = strchr(name, '{');
    size_t fl = brace ? (size_t)(brace - name) : strlen(name);
    memcpy(family, name, fl);
    family[fl] = 0;
    labels[0] = 0;
    if (brace) {
        size_t ll = strlen(brace + 1);
        if (ll && brace[ll] == '}') ll--;
        memcpy(labels, brace + 1, ll);
        labels[ll] = 0;
    }
}

int tn_metrics_prometheus(tn_buf_t *out)
{
    static const char *types[] = {"counter", "gauge", "histogram"};
    int rc = 0;
    /* All series of a family must form one group, also when a label value was registered
     * after other metrics (tn_strikes_total{kind=...}): emit in family order. */
    static int order[TN_METRICS_MAX];
    static bool placed[TN_METRICS_MAX];
    int no = 0;
    memset(placed, 0, sizeof placed);
    for (int i = 0; i < g_n; i++) {
        char fam[TN_METRIC_NAME_MAX], lab[TN_METRIC_NAME_MAX];
        if (placed[i]) continue;
        split(g_metrics[i].name, fam, lab);
        for (int j = i; j < g_n; j++) {
            char f2[TN_METRIC_NAME_MAX], l2[TN_METRIC_NAME_MAX];
            split(g_metrics[j].name, f2, l2);
            if (!placed[j] && strcmp(f2, fam) == 0) placed[j] = true, order[no++] = j;
        }
    }
    for (int k = 0; k < no && rc == 0; k++) {
        int i = order[k];
        const tn_metric_t *m = &g_metrics[i];
        char fam[TN_METRIC_NAME_MAX], lab[TN_METRIC_NAME_MAX];
        split(m->name, fam, lab);
        bool first = true; /* HELP/TYPE once per family: the first metric of it */
        for (int j = 0; j < i && first; j++) {
            char f2[TN_METRIC_NAME_MAX], l2[TN_METRIC_NAME_MAX];
            split(g_metrics[j].name, f2, l2);
            if (strcmp(f2, fam) == 0) first = false;
        }
        if (first)
            rc |= appendf(out, "# HELP %s %s\n# TYPE %s %s\n", fam, m->help ? m->help : fam, fam,
                          types[m->kind]);
        if (m->kind != TN_METRIC_HISTOGRAM) {
            char v[32];
            rc |= appendf(out, "%s %s\n", m->name, num(v, m->value));
            continue;
        }
        uint64_t cum = 0;
        const char *sep = lab[0] ? "," : "";
        for (int b = 0; b <= m->nbuckets; b++) {
            cum += m->counts[b];
            char v[32];
            if (b < m->nbuckets)
                rc |= appendf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", fam, lab, sep,
                              num(v, m->bounds[b]), (unsigned long long)cum);
            else
                rc |= appendf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", fam, lab, sep,
                              (unsigned long long)cum);
        }
        const char *lo = lab[0] ? "{" : "", *lc = lab[0] ? "}" : "";
        char v[32];
        rc |= appendf(out, "%s_sum%s%s%s %s\n%s_count%s%s%s %llu\n", fam, lo, lab, lc,
                      num(v, m->sum), fam, lo, lab, lc, (unsigned long long)m->count);
    }
    return rc ? TN_ENOMEM : TN_OK;
}
