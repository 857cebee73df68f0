/* Log lines (tn_log.h): the operator format, one line per event, and repeats folded into
 * one summary line. Output goes to a memory stream read back after each step. */
#include "tn_log.h"
#include "tn_test.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static char *g_text;
static size_t g_len;
static FILE *g_out;

static void start(const char *name, double window_s)
{
    g_out = open_memstream(&g_text, &g_len);
    TN_ASSERT(g_out != NULL);
    tn_log_init(name, TN_LOG_INFO, window_s, g_out);
}

static void finish(void)
{
    tn_log_init("x", TN_LOG_INFO, 0, NULL);
    fclose(g_out);
    free(g_text);
    g_text = NULL;
}

/* Line k (0-based) of the output, without the timestamp and name, into out. */
static const char *line_msg(int k, char *out, size_t n)
{
    fflush(g_out);
    const char *p = g_text;
    for (int i = 0; i < k && p; i++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    if (!p || !*p) TN_FAIL("no line %d in output: \"%s\"", k, g_text);
    const char *end = strchr(p, '\n');
    const char *msg = strstr(p, "] ");
    if (!end || !msg || msg > end) TN_FAIL("line %d malformed: \"%s\"", k, p);
    msg += 2;
    snprintf(out, n, "%.*s", (int)(end - msg), msg);
    return out;
}

static int lines(void)
{
    fflush(g_out);
    return g_text ? tn_test_count_lines(g_text) : 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

TN_TEST(log_line_format)
{
    start("node-1", 10);
    tn_info("Connected to peer: %s", "1.2.3.4");
    tn_warn("Connection to %s lost", "5.6.7.8");
    tn_error("e");
    fflush(g_out);
    regex_t re;
    TN_ASSERT_INT(regcomp(&re,
                          "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} \\[node-1\\] "
                          "INFO Connected to peer: 1\\.2\\.3\\.4\n"
                          "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} \\[node-1\\] "
                          "WARN Connection to 5\\.6\\.7\\.8 lost\n"
                          "[0-9-]{10} [0-9:]{8} \\[node-1\\] ERROR e\n$",
                          REG_EXTENDED | REG_NOSUB),
                  ==, 0);
    int m = regexec(&re, g_text, 0, NULL, 0);
    regfree(&re);
    if (m != 0) TN_FAIL("output does not match the format: \"%s\"", g_text);
    /* The timestamp is now, in UTC. */
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char day[16];
    strftime(day, sizeof day, "%Y-%m-%d", &tm);
    if (strncmp(g_text, day, 10) != 0) {
        now -= 5; /* allow for midnight between the log call and here */
        gmtime_r(&now, &tm);
        strftime(day, sizeof day, "%Y-%m-%d", &tm);
        TN_ASSERT(strncmp(g_text, day, 10) == 0);
    }
    finish();
}

TN_TEST(log_folds_repeats)
{
    char m[256];
    start("n", 10);
    for (int k = 0; k < 5; k++) tn_info("Invalid message from %s", "9.9.9.9");
    TN_ASSERT_INT(lines(), ==, 1);
    TN_ASSERT_STR_EQ(line_msg(0, m, sizeof m), "INFO Invalid message from 9.9.9.9");
    tn_log_flush(0); /* the window has not ended: nothing yet */
    TN_ASSERT_INT(lines(), ==, 1);
    tn_log_flush(1);
    TN_ASSERT_INT(lines(), ==, 2);
    TN_ASSERT_STR_EQ(line_msg(1, m, sizeof m),
                     "INFO Invalid message from 9.9.9.9 (repeated 4 more times)");
    tn_log_flush(1); /* summarised once only */
    TN_ASSERT_INT(lines(), ==, 2);
    /* After the summary the same message starts a new fold. */
    tn_info("Invalid message from %s", "9.9.9.9");
    TN_ASSERT_INT(lines(), ==, 3);
    finish();
}

TN_TEST(log_single_line_has_no_summary)
{
    start("n", 10);
    tn_info("once");
    tn_log_flush(1);
    TN_ASSERT_INT(lines(), ==, 1);
    finish();
}

TN_TEST(log_distinct_lines_not_folded)
{
    char m[256];
    start("n", 10);
    tn_info("peer %d", 1);
    tn_info("peer %d", 2);
    tn_info("peer %d", 3);
    TN_ASSERT_INT(lines(), ==, 3);
    TN_ASSERT_STR_EQ(line_msg(0, m, sizeof m), "INFO peer 1");
    TN_ASSERT_STR_EQ(line_msg(1, m, sizeof m), "INFO peer 2");
    TN_ASSERT_STR_EQ(line_msg(2, m, sizeof m), "INFO peer 3");
    tn_log_flush(1);
    TN_ASSERT_INT(lines(), ==, 3);
    finish();
}

TN_TEST(log_interleaved_repeats_fold_separately)
{
    char m[256];
    start("n", 10);
    for (int k = 0; k < 3; k++) {
        tn_info("Wrong network magic from 1.1.1.1");
        tn_warn("Connection to 2.2.2.2 lost");
    }
    TN_ASSERT_INT(lines(), ==, 2);
    tn_log_flush(1);
    TN_ASSERT_INT(lines(), ==, 4);
    /* Each summary keeps its own level and count. */
    const char *a = line_msg(2, m, sizeof m);
    char b[256];
    line_msg(3, b, sizeof b);
    if (strcmp(a, "INFO Wrong network magic from 1.1.1.1 (repeated 2 more times)") != 0) {
        char t[256];
        snprintf(t, sizeof t, "%s", a);
        snprintf(m, sizeof m, "%s", b);
        snprintf(b, sizeof b, "%s", t);
    }
    TN_ASSERT_STR_EQ(m, "INFO Wrong network magic from 1.1.1.1 (repeated 2 more times)");
    TN_ASSERT_STR_EQ(b, "WARN Connection to 2.2.2.2 lost (repeated 2 more times)");
    finish();
}

TN_TEST(log_nofold_never_folds)
{
    start("n", 10);
    for (int k = 0; k < 4; k++) tn_log_nofold(TN_LOG_INFO, "Status: Height=%d", 7);
    TN_ASSERT_INT(lines(), ==, 4);
    tn_log_flush(1);
    TN_ASSERT_INT(lines(), ==, 4);
    finish();
}

TN_TEST(log_newline_becomes_space)
{
    char m[256];
    start("n", 10);
    tn_info("two\nlines\r\nhere");
    TN_ASSERT_INT(lines(), ==, 1);
    TN_ASSERT_STR_EQ(line_msg(0, m, sizeof m), "INFO two lines  here");
    tn_log_nofold(TN_LOG_WARN, "a\nb");
    TN_ASSERT_INT(lines(), ==, 2);
    TN_ASSERT_STR_EQ(line_msg(1, m, sizeof m), "WARN a b");
    /* Other bytes pass untouched: the seed's check mark and status emoji are UTF-8. */
    tn_info("\xE2\x9C\x93 Connected to peer: %s", "1.2.3.4");
    TN_ASSERT_STR_EQ(line_msg(2, m, sizeof m), "INFO \xE2\x9C\x93 Connected to peer: 1.2.3.4");
    finish();
}

TN_TEST(log_window_expiry)
{
    char m[256];
    start("n", 0.05);
    tn_info("flap");
    tn_info("flap");
    tn_info("flap");
    TN_ASSERT_INT(lines(), ==, 1);
    sleep_ms(80);
    /* The window ended: the next repeat prints the summary, then itself. */
    tn_info("flap");
    TN_ASSERT_INT(lines(), ==, 3);
    TN_ASSERT_STR_EQ(line_msg(1, m, sizeof m), "INFO flap (repeated 2 more times)");
    TN_ASSERT_STR_EQ(line_msg(2, m, sizeof m), "INFO flap");
    /* A periodic unforced flush summarises folds whose window ended. */
    tn_info("flap");
    sleep_ms(80);
    tn_log_flush(0);
    TN_ASSERT_INT(lines(), ==, 4);
    TN_ASSERT_STR_EQ(line_msg(3, m, sizeof m), "INFO flap (repeated 1 more times)");
    finish();
}

TN_TEST(log_window_zero_disables_folding)
{
    start("n", 0);
    for (int k = 0; k < 3; k++) tn_info("same");
    TN_ASSERT_INT(lines(), ==, 3);
    finish();
}

TN_TEST(log_level_filter)
{
    char m[256];
    start("n", 10);
    tn_debug("hidden");
    tn_info("shown");
    tn_log_set_level(TN_LOG_ERROR);
    tn_warn("hidden too");
    tn_error("bad");
    TN_ASSERT_INT(lines(), ==, 2);
    TN_ASSERT_STR_EQ(line_msg(1, m, sizeof m), "ERROR bad");
    tn_log_level_t l;
    TN_ASSERT_OK(tn_log_level_parse("debug", &l));
    TN_ASSERT_INT(l, ==, TN_LOG_DEBUG);
    TN_ASSERT_OK(tn_log_level_parse("error", &l));
    TN_ASSERT_INT(l, ==, TN_LOG_ERROR);
    TN_ASSERT_RC(tn_log_level_parse("INFO", &l), TN_EINVAL);
    TN_ASSERT_RC(tn_log_level_parse("verbose", &l), TN_EINVAL);
    finish();
}

TN_TEST(log_long_line_is_one_line)
{
    start("n", 10);
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    tn_info("%s", big);
    tn_info("%s", big);
    tn_log_flush(1);
    TN_ASSERT_INT(lines(), ==, 2); /* truncated, and the summary too, but each one line */
    TN_ASSERT(g_text[g_len - 1] == '\n');
    finish();
}
