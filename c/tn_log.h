/* Log lines in the operator format `YYYY-MM-DD HH:MM:SS [node-name] LEVEL message` (UTC),
 * one event per line. Identical messages repeated within the fold window are suppressed and
 * summarised in one later line with their count (seed §16 "Avoid Log Spam"). Loop thread
 * only. */
#ifndef TN_LOG_H
#define TN_LOG_H

#include "tn_common.h"

#include <stdio.h>

typedef enum { TN_LOG_DEBUG, TN_LOG_INFO, TN_LOG_WARN, TN_LOG_ERROR } tn_log_level_t;

/* Bound on folded-message slots; a new distinct message evicts the oldest one. */
#define TN_LOG_FOLD_SLOTS 64
#define TN_LOG_LINE_MAX 1024

void tn_log_init(const char *node_name, tn_log_level_t level, double fold_window_s, FILE *out);
void tn_log_set_level(tn_log_level_t level);
void tn_log_set_fold_window(double fold_window_s);
/* Appends to path instead of the init stream (log_file). tn_log_reopen opens the path again
 * (SIGUSR1, after logrotate moved the file); on failure the old stream stays and err says
 * why. tn_log_close falls back to stderr. */
int tn_log_open_file(const char *path, char *err, size_t errlen);
int tn_log_reopen(char *err, size_t errlen);
void tn_log_close(void);
int tn_log_level_parse(const char *s, tn_log_level_t *out);
void tn_log(tn_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For periodic reports (the status line): never folded, each one is news. */
void tn_log_nofold(tn_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Emits summaries for folds whose window has ended (all of them when force). */
void tn_log_flush(int force);

#define tn_debug(...) tn_log(TN_LOG_DEBUG, __VA_ARGS__)
#define tn_info(...) tn_log(TN_LOG_INFO, __VA_ARGS__)
#define tn_warn(...) tn_log(TN_LOG_WARN, __VA_ARGS__)
#define tn_error(...) tn_log(TN_LOG_ERROR, __VA_ARGS__)

#endif
