/* The operator pieces below the integration specs: config keys one by one (what config reload
 * compares and swaps), the live-key list, the log file reopened after a rotation, traffic
 * counted by message type, the shortest number text in the exposition, and sd_notify. */
#include "tn_config.h"
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_proto.h"
#include "tn_sdnotify.h"
#include "tn_test.h"
#include "tn_traffic.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int key(const char *name)
{
    for (int i = 0; i < tn_config_nkeys(); i++)
        if (strcmp(tn_config_key_name(i), name) == 0) return i;
    TN_FAIL("no config key %s", name);
}

TN_TEST(config_live_keys_exist)
{
    /* every name in the live list is a real key (a typo would make a key restart-only) */
    static const char *const live[] = {"log_level",        "max_peers",     "whitelist", "features",
                                       "persistent_peers", "policy_budget", "ban_long"};
    for (size_t i = 0; i < TN_ARRAY_LEN(live); i++) {
        key(live[i]);
        TN_ASSERT(tn_config_key_live(live[i]));
    }
    int n_live = 0;
    for (int i = 0; i < tn_config_nkeys(); i++) n_live += tn_config_key_live(tn_config_key_name(i));
    TN_ASSERT_INT(n_live, >=, 30);
    static const char *const restart[] = {"listen",    "data_dir",   "network",
                                          "node_name", "policy_dir", "metrics_listen"};
    for (size_t i = 0; i < TN_ARRAY_LEN(restart); i++) TN_ASSERT(!tn_config_key_live(restart[i]));
    TN_ASSERT(!tn_config_key_live("no_such_key"));
}

TN_TEST(config_key_equal_and_swap)
{
    tn_config_t a, b;
    char err[256];
    TN_ASSERT_OK(tn_config_defaults(&a));
    TN_ASSERT_OK(tn_config_defaults(&b));
    const char *path = tn_test_tmpfile("max_peers = 20\nwhitelist = { \"10.0.0.1\", \"::1\" }\n"
                                       "log_level = \"debug\"\nreconnect_backoff = { 1, 3 }\n",
                                       ".conf");
    TN_ASSERT_OK(tn_config_load(&b, path, err, sizeof err));
    int differ = 0;
    for (int i = 0; i < tn_config_nkeys(); i++) differ += !tn_config_key_equal(&a, &b, i);
    TN_ASSERT_INT(differ, ==, 4);
    TN_ASSERT(tn_config_key_equal(&a, &b, key("listen")));
    /* swap moves the values (and who frees them) both ways */
    tn_config_key_swap(&a, &b, key("whitelist"));
    tn_config_key_swap(&a, &b, key("log_level"));
    tn_config_key_swap(&a, &b, key("max_peers"));
    tn_config_key_swap(&a, &b, key("reconnect_backoff"));
    TN_ASSERT_INT(a.whitelist.n, ==, 2);
    TN_ASSERT_STR_EQ(a.whitelist.v[1], "::1");
    TN_ASSERT_INT(b.whitelist.n, ==, 0);
    TN_ASSERT_STR_EQ(a.log_level, "debug");
    TN_ASSERT_STR_EQ(b.log_level, "info");
    TN_ASSERT_INT(a.max_peers, ==, 20);
    TN_ASSERT_INT(b.max_peers, ==, 50);
    TN_ASSERT_INT(a.reconnect_backoff.n, ==, 2);
    TN_ASSERT_INT(b.reconnect_backoff.n, ==, 5);
    for (int i = 0; i < tn_config_nkeys(); i++)
        if (strcmp(tn_config_key_name(i), "node_name") != 0)
            TN_ASSERT(!tn_config_key_equal(&a, &b, i) ==
                      (i == key("whitelist") || i == key("log_level") || i == key("max_peers") ||
                       i == key("reconnect_backoff")));
    tn_config_free(&a); /* under ASan: nothing leaked, nothing freed twice */
    tn_config_free(&b);
}

TN_TEST(log_file_reopen_after_rotation)
{
    char dir[] = "/tmp/tn-unit-log.XXXXXX";
    TN_ASSERT(mkdtemp(dir) != NULL);
    char path[256], moved[256];
    snprintf(path, sizeof path, "%s/node.log", dir);
    snprintf(moved, sizeof moved, "%s/node.log.1", dir);
    char err[256];
    tn_log_init("u", TN_LOG_INFO, 0, NULL);
    TN_ASSERT_OK(tn_log_open_file(path, err, sizeof err));
    tn_info("before rotation");
    TN_ASSERT(rename(path, moved) == 0);
    tn_info("still the old file");
    TN_ASSERT_OK(tn_log_reopen(err, sizeof err));
    tn_info("after reopen");
    tn_log_close();
    char *old = tn_test_read_file(moved, NULL), *cur = tn_test_read_file(path, NULL);
    TN_ASSERT(old && cur);
    TN_ASSERT_STR_HAS(old, "[u] INFO before rotation\n");
    TN_ASSERT_STR_HAS(old, "still the old file");
    TN_ASSERT(!strstr(old, "after reopen"));
    TN_ASSERT_INT(tn_test_count_lines(cur), ==, 1);
    TN_ASSERT_STR_HAS(cur, "[u] INFO after reopen\n");
    free(old);
    free(cur);
    /* a path that cannot be opened leaves the log where it was and says why */
    TN_ASSERT_RC(tn_log_open_file("/proc/no/such.log", err, sizeof err), TN_EIO);
    TN_ASSERT_STR_HAS(err, "cannot open log file /proc/no/such.log");
    unlink(path);
    unlink(moved);
    rmdir(dir);
}

TN_TEST(traffic_counted_by_type)
{
    tn_traffic_in(TN_MSG_PING, 8);
    tn_traffic_in(TN_MSG_PING, 8);
    tn_traffic_out(TN_MSG_HELLO, 100);
    tn_traffic_in(0x7001, 3);  /* a core type this build does not know */
    tn_traffic_in(0x9000, 10); /* the experiment range */
    TN_ASSERT_DBL(tn_metrics_value("tn_messages_received_total{type=\"ping\"}"), ==, 2);
    TN_ASSERT_DBL(tn_metrics_value("tn_message_bytes_received_total{type=\"ping\"}"), ==,
                  2 * (8 + TN_MSG_HDR_LEN));
    TN_ASSERT_DBL(tn_metrics_value("tn_messages_sent_total{type=\"hello\"}"), ==, 1);
    TN_ASSERT_DBL(tn_metrics_value("tn_message_bytes_sent_total{type=\"hello\"}"), ==, 106);
    TN_ASSERT_DBL(tn_metrics_value("tn_messages_received_total{type=\"unknown\"}"), ==, 1);
    TN_ASSERT_DBL(tn_metrics_value("tn_messages_received_total{type=\"experiment\"}"), ==, 1);
}

TN_TEST(exposition_numbers_shortest)
{
    static const double bounds[] = {0.0025, 0.1, 1e-6};
    tn_metric_t *h = tn_metric_histogram("tn_unit_lag_seconds", "x", bounds, 3);
    tn_metric_observe(h, 0.3);
    tn_metric_set(tn_metric_gauge("tn_unit_third", "x"), 1.0 / 3.0);
    tn_buf_t b;
    tn_buf_init(&b, 1 << 20);
    TN_ASSERT_OK(tn_metrics_prometheus(&b));
    TN_ASSERT_OK(tn_buf_append(&b, "", 1));
    const char *text = (const char *)b.p;
    TN_ASSERT_STR_HAS(text, "tn_unit_lag_seconds_bucket{le=\"0.0025\"} 0\n");
    TN_ASSERT_STR_HAS(text, "tn_unit_lag_seconds_bucket{le=\"0.1\"} 0\n");
    TN_ASSERT_STR_HAS(text, "tn_unit_lag_seconds_sum 0.3\n");
    TN_ASSERT_STR_HAS(text, "tn_unit_third 0.33333333333333331\n"); /* needs all 17 digits */
    tn_buf_free(&b);
}

TN_TEST(sd_notify_datagrams)
{
    unsetenv("NOTIFY_SOCKET");
    TN_ASSERT_RC(tn_sd_notify("READY=1"), TN_ENOTFOUND);
    char path[] = "/tmp/tn-unit-notify.XXXXXX";
    int tmp = mkstemp(path);
    TN_ASSERT(tmp >= 0);
    close(tmp);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    TN_ASSERT(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    setenv("NOTIFY_SOCKET", path, 1);
    TN_ASSERT_OK(tn_sd_notify("READY=1\nSTATUS=up"));
    char buf[64] = {0};
    TN_ASSERT_INT(recv(fd, buf, sizeof buf - 1, 0), ==, 17);
    TN_ASSERT_STR_EQ(buf, "READY=1\nSTATUS=up");
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    TN_ASSERT_RC(tn_sd_notify("READY=1"), TN_EINVAL);
    close(fd);
    unlink(path);
    /* watchdog: ours, another process's, malformed */
    setenv("WATCHDOG_USEC", "30000000", 1);
    unsetenv("WATCHDOG_PID");
    TN_ASSERT_U64(tn_sd_watchdog_usec(), ==, 30000000);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    TN_ASSERT_U64(tn_sd_watchdog_usec(), ==, 30000000);
    setenv("WATCHDOG_PID", "1", 1);
    TN_ASSERT_U64(tn_sd_watchdog_usec(), ==, 0);
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "30s", 1);
    TN_ASSERT_U64(tn_sd_watchdog_usec(), ==, 0);
}
