/* Log formatting and folding of repeats (see tn_log.h). */
#include "tn_log.h"

#include <errno.h>
#include <stdarg.h>
#include <time.h>

typedef struct {
    uint64_t hash;
    uint64_t first_ms;
    uint32_t repeats; /* suppressed since first_ms */
    tn_log_level_t level;
    char text[TN_LOG_LINE_MAX];
} fold_t;

static struct {
    char name[TN_NAME_MAX + 1];
    tn_log_level_t level;
    uint64_t window_ms;
    FILE *out;
    fold_t folds[TN_LOG_FOLD_SLOTS];
    FILE *file;      /* log_file, when set: owned here */
    char path[4096]; /* its path, for reopening */
} g = {"timenet", TN_LOG_INFO, 10000, NULL, {{0}}, NULL, ""};

static const char *LEVELS[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void tn_log_init(const char *node_name, tn_log_level_t level, double fold_window_s, FILE *out)
{
    snprintf(g.name, sizeof g.name, "%s", node_name);
    g.level = level;
    g.window_ms = (uint64_t)(fold_window_s * 1000.0);
    g.out = out;
    memset(g.folds, 0, sizeof g.folds);
}

void tn_log_set_level(tn_log_level_t level)
{
    g.level = level;
}

void tn_log_set_fold_window(double fold_window_s)
{
    g.window_ms = (uint64_t)(fold_window_s * 1000.0);
}

static FILE *open_append(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "a");
    if (!f) {
        snprintf(err, errlen, "cannot open log file %s: %s", path, strerror(errno));
        return NULL;
    }
    return f;
}

int tn_log_open_file(const char *path, char *err, size_t errlen)
{
    if (strlen(path) >= sizeof g.path) {
        snprintf(err, errlen, "log file path is too long");
        return TN_ETOOBIG;
    }
    FILE *f = open_append(path, err, errlen);
    if (!f) return TN_EIO;
    tn_log_close();
    snprintf(g.path, sizeof g.path, "%s", path);
    g.file = g.out = f;
    return TN_OK;
}

int tn_log_reopen(char *err, size_t errlen)
{
    if (!g.file) return TN_OK; /* stderr: nothing to reopen */
    FILE *f = open_append(g.path, err, errlen);
    if (!f) return TN_EIO;
    fclose(g.file);
    g.file = g.out = f;
    return TN_OK;
}

void tn_log_close(void)
{
    if (g.file) fclose(g.file);
    if (g.out == g.file) g.out = NULL;
    g.file = NULL;
    g.path[0] = 0;
}

int tn_log_level_parse(const char *s, tn_log_level_t *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (tn_log_level_t)i;
            return TN_OK;
        }
    return TN_EINVAL;
}

static void emit(tn_log_level_t level, const char *text)
{
    FILE *out = g.out ? g.out : stderr;
    char line[TN_LOG_LINE_MAX + 128];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    int n = (int)strftime(line, 32, "%Y-%m-%d %H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, " [%s] %s %s\n", g.name, LEVELS[level], text);
    if (n > (int)sizeof line - 1) {
        n = (int)sizeof line - 1;
        line[n - 1] = '\n';
    }
    fwrite(line, 1, (size_t)n, out); /* one write per line: lines never interleave */
    fflush(out);
}

static void summarise(fold_t *f)
{
    if (f->repeats == 0) return;
    char text[TN_LOG_LINE_MAX + 64];
    snprintf(text, sizeof text, "%s (repeated %u more times)", f->text, f->repeats);
    emit(f->level, text);
    f->repeats = 0;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static void format(char text[TN_LOG_LINE_MAX], const char *fmt, va_list ap)
{
    vsnprintf(text, TN_LOG_LINE_MAX, fmt, ap);
    for (char *p = text; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' '; /* one event, one line */
}

void tn_log_nofold(tn_log_level_t level, const char *fmt, ...)
{
    if (level < g.level) return;
    char text[TN_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    format(text, fmt, ap);
    va_end(ap);
    emit(level, text);
}

void tn_log(tn_log_level_t level, const char *fmt, ...)
{
    if (level < g.level) return;
    char text[TN_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    format(text, fmt, ap);
    va_end(ap);
    if (g.window_ms == 0) {
        emit(level, text);
        return;
    }
    uint64_t now = tn_mono_ms(), h = fnv1a(text);
    fold_t *slot = &g.folds[h % TN_LOG_FOLD_SLOTS];
    if (slot->hash == h && slot->first_ms && now - slot->first_ms < g.window_ms &&
        strcmp(slot->text, text) == 0) {
        slot->repeats++;
        return;
    }
    summarise(slot);
    emit(level, text);
    slot->hash = h;
    slot->first_ms = now;
    slot->level = level;
    snprintf(slot->text, sizeof slot->text, "%s", text);
}

void tn_log_flush(int force)
{
    uint64_t now = tn_mono_ms();
    for (int i = 0; i < TN_LOG_FOLD_SLOTS; i++) {
        fold_t *f = &g.folds[i];
        if (f->first_ms && (force || now - f->first_ms >= g.window_ms)) {
            summarise(f);
            f->first_ms = 0;
        }
    }
}
