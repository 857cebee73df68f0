/* timenetd: command line, start-up order and the event loop. The only place that exits
 * the process; everything below it returns errors. */
#include "tn_config.h"
#include "tn_crypto.h"
#include "tn_log.h"
#include "tn_node.h"
#include "tn_policy.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef TN_VERSION
#define TN_VERSION "0.1.0"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "usage: timenetd [--config FILE]        run a node (built-in defaults without FILE)\n"
            "       timenetd --check-config FILE    validate a config file and exit\n"
            "       timenetd --print-config [FILE]  print the effective config with docs\n"
            "       timenetd --check-policy DIR [--config FILE]\n"
            "                                       load and self-test a policy directory\n"
            "       timenetd --version | --help\n");
}

int main(int argc, char **argv)
{
    const char *config = NULL, *policy_dir = NULL;
    int check = 0, print = 0;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--config") || !strcmp(argv[i], "-c")) && i + 1 < argc)
            config = argv[++i];
        else if (!strcmp(argv[i], "--check-config") && i + 1 < argc)
            check = 1, config = argv[++i];
        else if (!strcmp(argv[i], "--check-policy") && i + 1 < argc)
            policy_dir = argv[++i];
        else if (!strcmp(argv[i], "--print-config"))
            print = 1, config = i + 1 < argc ? argv[++i] : NULL;
        else if (!strcmp(argv[i], "--version")) {
            printf("timenetd %s (protocol %d)\n", TN_VERSION, TN_PROTO_VERSION);
            return 0;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "timenetd: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    tn_config_t cfg;
    char err[1024];
    if (tn_config_defaults(&cfg) != TN_OK) {
        fprintf(stderr, "timenetd: out of memory\n");
        return 1;
    }
    if (config && tn_config_load(&cfg, config, err, sizeof err) != TN_OK) {
        fprintf(stderr, "timenetd: config error: %s\n", err);
        tn_config_free(&cfg);
        return 1;
    }
    if (policy_dir) {
        if (tn_crypto_init() != TN_OK) return 1;
        int rc = tn_policy_check(policy_dir, &cfg, err, sizeof err);
        fprintf(rc == TN_OK ? stdout : stderr, "%s%s\n",
                rc == TN_OK ? "" : "timenetd: policy error: ", err);
        tn_config_free(&cfg);
        return rc == TN_OK ? 0 : 1;
    }
    if (check || print) {
        if (print) tn_config_print(&cfg, stdout);
        if (check) printf("%s: ok\n", config);
        tn_config_free(&cfg);
        return 0;
    }

    umask(0077); /* key, store, socket: the operator's only */
    tn_log_level_t level = TN_LOG_INFO;
    tn_log_level_parse(cfg.log_level, &level);
    tn_log_init(cfg.node_name, level, cfg.log_fold_window, stderr);
    if (cfg.log_file[0] && tn_log_open_file(cfg.log_file, err, sizeof err) != TN_OK) {
        fprintf(stderr, "timenetd: %s\n", err);
        tn_config_free(&cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (tn_crypto_init() != TN_OK) {
        tn_error("libsodium failed to initialise");
        return 1;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    tn_node_t node;
    int rc = tn_node_start(&node, &loop, &cfg, err, sizeof err);
    if (rc != TN_OK) {
        tn_error("Cannot start: %s", err);
        uv_run(&loop, UV_RUN_DEFAULT); /* let handles opened before the failure close */
    } else {
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    tn_node_free(&node);
    uv_run(&loop, UV_RUN_DEFAULT); /* close callbacks of what tn_node_free released */
    if (uv_loop_close(&loop) != 0) tn_warn("event loop closed with handles still open");
    if (rc == TN_OK) tn_info("Stopped");
    tn_log_close();
    tn_config_free(&cfg);
    return rc == TN_OK ? 0 : 1;
}
