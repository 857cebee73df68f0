/* Config files (tn_config.h): what an operator sees for a good file and for each kind of
 * mistake, always with file:line. */
#include "tn_config.h"
#include "tn_test.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    tn_config_t c;
    char err[1024];
    char want_prefix[600];
    int rc;
} loaded_t;

/* Loads text (as a file) over the defaults; want_prefix is set to "path:line: " for line. */
static void load(loaded_t *l, const char *text)
{
    const char *path = tn_test_tmpfile(text, ".lua");
    memset(l, 0, sizeof *l);
    TN_ASSERT_OK(tn_config_defaults(&l->c));
    l->rc = tn_config_load(&l->c, path, l->err, sizeof l->err);
    snprintf(l->want_prefix, sizeof l->want_prefix, "%s:", path);
}

/* The load failed with an error naming the file and line and containing what. */
#define ASSERT_LOAD_ERROR(l, line, what)                                                           \
    do {                                                                                           \
        char tn_pfx_[700];                                                                         \
        TN_ASSERT_RC((l)->rc, TN_EINVAL);                                                          \
        snprintf(tn_pfx_, sizeof tn_pfx_, "%s%d: ", (l)->want_prefix, line);                       \
        TN_ASSERT_STR_PREFIX((l)->err, tn_pfx_);                                                   \
        TN_ASSERT_STR_HAS((l)->err, what);                                                         \
        tn_config_free(&(l)->c);                                                                   \
    } while (0)

TN_TEST(config_defaults)
{
    tn_config_t c;
    TN_ASSERT_OK(tn_config_defaults(&c));
    /* The seed's numbers (DESIGN.md "Defaults"). */
    TN_ASSERT_INT(c.max_peers, ==, 50);
    TN_ASSERT_INT(c.min_peers, ==, 8);
    TN_ASSERT_DBL(c.connection_timeout, ==, 30);
    TN_ASSERT_DBL(c.reconnect_delay, ==, 5);
    TN_ASSERT_DBL(c.sync_interval, ==, 300);
    TN_ASSERT_DBL(c.heartbeat_interval, ==, 30);
    TN_ASSERT_DBL(c.pong_deadline, ==, 5);
    TN_ASSERT_INT(c.missed_pongs_close, ==, 3);
    TN_ASSERT_INT(c.reconnect_max_attempts, ==, 10);
    TN_ASSERT_INT(c.max_frame_size, ==, 8 << 20);
    TN_ASSERT_STR_EQ(c.network, "testnet");
    TN_ASSERT(!c.allow_local_addresses);
    TN_ASSERT_INT(c.reconnect_backoff.n, ==, 5);
    static const double mult[] = {1, 2, 6, 12, 60};
    for (int k = 0; k < 5; k++) TN_ASSERT_DBL(c.reconnect_backoff.v[k], ==, mult[k]);
    TN_ASSERT_INT(c.seeds.n, ==, 0);
    /* node_name defaults to the host name. */
    TN_ASSERT(c.node_name && c.node_name[0]);
    TN_ASSERT_INT(strlen(c.node_name), <=, TN_NAME_MAX);
    TN_ASSERT(c.path == NULL);
    tn_config_free(&c);
}

TN_TEST(config_valid_file)
{
    loaded_t l;
    load(&l, "-- a test node\n"
             "node_name = \"alpha-1\"\n"
             "network = \"mainnet\"\n"
             "listen = \"[::1]:24101\"\n"
             "allow_local_addresses = true\n"
             "max_peers = 20\n"
             "min_peers = 4\n"
             "heartbeat_interval = 0.25 -- test scale\n"
             "max_frame_size = 1024 * 1024\n"
             "seeds = { \"127.0.0.2:24100\", \"[::1]:24102\" }\n"
             "persistent_peers = { \"10.0.0.1:1\" }\n"
             "whitelist = { \"127.0.0.1\", \"::1\" }\n"
             "features = { \"x\" }\n"
             "local n = 2\n"
             "reconnect_backoff = { 1, n, 4.5 }\n");
    if (l.rc) TN_FAIL("load failed: %s", l.err);
    TN_ASSERT_STR_EQ(l.c.node_name, "alpha-1");
    TN_ASSERT_STR_EQ(l.c.network, "mainnet");
    TN_ASSERT_STR_EQ(l.c.listen, "[::1]:24101");
    TN_ASSERT(l.c.allow_local_addresses);
    TN_ASSERT_INT(l.c.max_peers, ==, 20);
    TN_ASSERT_INT(l.c.min_peers, ==, 4);
    TN_ASSERT_DBL(l.c.heartbeat_interval, ==, 0.25);
    TN_ASSERT_INT(l.c.max_frame_size, ==, 1 << 20);
    TN_ASSERT_INT(l.c.seeds.n, ==, 2);
    TN_ASSERT_STR_EQ(l.c.seeds.v[0], "127.0.0.2:24100");
    TN_ASSERT_STR_EQ(l.c.seeds.v[1], "[::1]:24102");
    TN_ASSERT_INT(l.c.persistent_peers.n, ==, 1);
    TN_ASSERT(tn_config_has(&l.c.whitelist, "::1"));
    TN_ASSERT(!tn_config_has(&l.c.whitelist, "127.0.0.2"));
    TN_ASSERT(tn_config_has(&l.c.features, "x"));
    TN_ASSERT_INT(l.c.reconnect_backoff.n, ==, 3);
    TN_ASSERT_DBL(l.c.reconnect_backoff.v[1], ==, 2);
    TN_ASSERT_DBL(l.c.reconnect_backoff.v[2], ==, 4.5);
    TN_ASSERT_DBL(l.c.connection_timeout, ==, 30); /* untouched keys keep their defaults */
    TN_ASSERT(l.c.path != NULL);
    tn_config_free(&l.c);
}

TN_TEST(config_unknown_key_suggests)
{
    loaded_t l;
    load(&l, "max_peers = 10\n\nmax_peer = 5\n");
    ASSERT_LOAD_ERROR(&l, 3, "unknown key 'max_peer' (did you mean 'max_peers'?)");
    load(&l, "-- far from every key\nzzzzzzzzzzzz = 1\n");
    ASSERT_LOAD_ERROR(&l, 2, "unknown key 'zzzzzzzzzzzz'");
    TN_ASSERT(strstr(l.err, "did you mean") == NULL);
    load(&l, "hearbeat_interval = 1\n");
    ASSERT_LOAD_ERROR(&l, 1, "did you mean 'heartbeat_interval'?");
}

TN_TEST(config_wrong_type)
{
    loaded_t l;
    load(&l, "max_peers = \"ten\"\n");
    ASSERT_LOAD_ERROR(&l, 1, "'max_peers' must be a number, got string");
    load(&l, "\nallow_local_addresses = 1\n");
    ASSERT_LOAD_ERROR(&l, 2, "'allow_local_addresses' must be true or false, got number");
    load(&l, "node_name = 42\n");
    ASSERT_LOAD_ERROR(&l, 1, "'node_name' must be a string, got number");
    load(&l, "seeds = \"1.2.3.4:5\"\n");
    ASSERT_LOAD_ERROR(&l, 1, "'seeds' must be a list of strings");
    load(&l, "seeds = { 5 }\n");
    ASSERT_LOAD_ERROR(&l, 1, "'seeds' entry 1 must be a string");
    load(&l, "features = { a = \"x\" }\n");
    ASSERT_LOAD_ERROR(&l, 1, "must be a list (no named fields or holes)");
    load(&l, "network = \"devnet\"\n");
    ASSERT_LOAD_ERROR(&l, 1, "'network' = \"devnet\" is not one of testnet|mainnet");
    load(&l, "log_level = \"verbose\"\n");
    ASSERT_LOAD_ERROR(&l, 1, "is not one of debug|info|warn|error");
}

TN_TEST(config_out_of_range)
{
    loaded_t l;
    load(&l, "max_peers = 0\n");
    ASSERT_LOAD_ERROR(&l, 1, "'max_peers' = 0 is out of range [1, 100000]");
    load(&l, "\n\nheartbeat_interval = -1\n");
    ASSERT_LOAD_ERROR(&l, 3, "'heartbeat_interval' = -1 is out of range");
    load(&l, "max_frame_size = 1023\n");
    ASSERT_LOAD_ERROR(&l, 1, "out of range");
    load(&l, "connection_timeout = 0/0\n"); /* NaN is not in any range */
    ASSERT_LOAD_ERROR(&l, 1, "out of range");
    load(&l, "max_peers = 1e300\n");
    ASSERT_LOAD_ERROR(&l, 1, "out of range");
    load(&l, "max_peers = -1/0\n");
    ASSERT_LOAD_ERROR(&l, 1, "out of range");
    load(&l, "max_peers = 0/0\n");
    ASSERT_LOAD_ERROR(&l, 1, "out of range");
    /* The bounds themselves are allowed. */
    load(&l, "max_peers = 100000\nmin_peers = 0\nheartbeat_interval = 0.05\n");
    if (l.rc) TN_FAIL("bounds refused: %s", l.err);
    tn_config_free(&l.c);
}

TN_TEST(config_integer_key_needs_whole_number)
{
    loaded_t l;
    load(&l, "max_peers = 2.5\n");
    ASSERT_LOAD_ERROR(&l, 1, "'max_peers' must be a whole number");
    load(&l, "max_peers = 20.0\n"); /* a float with an integer value is fine */
    if (l.rc) TN_FAIL("20.0 refused: %s", l.err);
    TN_ASSERT_INT(l.c.max_peers, ==, 20);
    tn_config_free(&l.c);
}

TN_TEST(config_bad_addresses)
{
    loaded_t l;
    load(&l, "max_peers = 10\npersistent_peers = {\n  \"1.2.3.4:5\",\n  \"1.2.3.4\",\n}\n");
    /* Checked after the file ran: the line is the assignment's last line. */
    TN_ASSERT_RC(l.rc, TN_EINVAL);
    TN_ASSERT_STR_HAS(l.err, "'persistent_peers' entry 2 \"1.2.3.4\" is not an address");
    TN_ASSERT_STR_PREFIX(l.err, l.want_prefix);
    int line = atoi(l.err + strlen(l.want_prefix));
    if (line < 2 || line > 5) TN_FAIL("line %d is not the persistent_peers assignment", line);
    tn_config_free(&l.c);
    load(&l, "seeds = { \"1.2.3.4:0\" }\n"); /* a dial address needs a port */
    ASSERT_LOAD_ERROR(&l, 1, "'seeds' entry 1");
    load(&l, "seeds = { \"example.com:24100\" }\n");
    ASSERT_LOAD_ERROR(&l, 1, "'seeds' entry 1");
    load(&l, "whitelist = { \"1.2.3.4:5\" }\n");
    ASSERT_LOAD_ERROR(&l, 1, "'whitelist' entry 1 \"1.2.3.4:5\" is not an IP address");
    load(&l, "\nlisten = \"localhost\"\n");
    ASSERT_LOAD_ERROR(&l, 2, "listen \"localhost\" is not");
    load(&l, "advertise = \"::1:5\"\n");
    ASSERT_LOAD_ERROR(&l, 1, "advertise");
}

TN_TEST(config_min_peers_above_max)
{
    loaded_t l;
    load(&l, "max_peers = 5\nmin_peers = 10\n");
    ASSERT_LOAD_ERROR(&l, 2, "min_peers (10) is above max_peers (5)");
    load(&l, "max_peers = 4\n"); /* against the default min_peers = 8 */
    TN_ASSERT_RC(l.rc, TN_EINVAL);
    TN_ASSERT_STR_HAS(l.err, "min_peers (8) is above max_peers (4)");
    tn_config_free(&l.c);
}

TN_TEST(config_node_name_rules)
{
    loaded_t l;
    load(&l, "node_name = \"\"\n");
    ASSERT_LOAD_ERROR(&l, 1, "node_name must be 1 to 64 characters");
    load(&l, "node_name = string.rep and 1 or \"a b\"\n");
    ASSERT_LOAD_ERROR(&l, 1, "unknown name 'string'");
    load(&l, "node_name = \"a b\"\n");
    ASSERT_LOAD_ERROR(&l, 1, "node_name may only hold printable characters");
    load(&l, "node_name = \"[x]\"\n");
    ASSERT_LOAD_ERROR(&l, 1, "node_name may only hold");
    load(&l, "node_name = \"a\\0b\"\n");
    ASSERT_LOAD_ERROR(&l, 1, "'node_name' is too long or has a NUL");
}

TN_TEST(config_reassignment_checked)
{
    /* A key assigned twice takes the last value, and every assignment is checked. */
    loaded_t l;
    load(&l, "max_peers = 10\nmax_peers = 20\nfeatures = { \"a\" }\nfeatures = { \"b\", \"c\" }\n");
    if (l.rc) TN_FAIL("load failed: %s", l.err);
    TN_ASSERT_INT(l.c.max_peers, ==, 20);
    TN_ASSERT_INT(l.c.features.n, ==, 2);
    TN_ASSERT_STR_EQ(l.c.features.v[0], "b");
    tn_config_free(&l.c);
    load(&l, "max_peers = 10\nmax_peers = \"many\"\n");
    ASSERT_LOAD_ERROR(&l, 2, "'max_peers' must be a number");
    load(&l, "min_peers = 2\nmax_peers = 10\nmax_peers = 0\n");
    ASSERT_LOAD_ERROR(&l, 3, "out of range");
    /* Cross-key errors name the line of the last assignment. */
    load(&l, "max_peers = 50\nmin_peers = 2\n\nmin_peers = 60\n");
    ASSERT_LOAD_ERROR(&l, 4, "min_peers (60) is above max_peers (50)");
}

TN_TEST(config_syntax_error)
{
    loaded_t l;
    load(&l, "max_peers = 10\nmin_peers = = 3\n");
    ASSERT_LOAD_ERROR(&l, 2, "unexpected symbol");
    load(&l, "max_peers = 10\nseeds = {\n\"1.2.3.4:5\"\n");
    TN_ASSERT_RC(l.rc, TN_EINVAL);
    TN_ASSERT_STR_PREFIX(l.err, l.want_prefix);
    tn_config_free(&l.c);
}

TN_TEST(config_runaway_code_stops)
{
    loaded_t l;
    load(&l, "max_peers = 10\nwhile true do end\n");
    ASSERT_LOAD_ERROR(&l, 2, "takes too long");
    /* Memory is capped too: doubling a string soon fails instead of taking the machine. */
    load(&l, "local s = \"x\"\nfor i = 1, 64 do s = s .. s end\n");
    TN_ASSERT_RC(l.rc, TN_EINVAL);
    TN_ASSERT(l.err[0] != 0);
    tn_config_free(&l.c);
}

TN_TEST(config_sandbox_has_no_globals)
{
    loaded_t l;
    load(&l, "os.exit(3)\n");
    ASSERT_LOAD_ERROR(&l, 1, "unknown name 'os'");
    load(&l, "\nprint(\"hi\")\n");
    ASSERT_LOAD_ERROR(&l, 2, "unknown name 'print'");
    load(&l, "x = require\n");
    ASSERT_LOAD_ERROR(&l, 1, "unknown name 'require'");
}

TN_TEST(config_reading_names)
{
    loaded_t l;
    /* A key not yet assigned reads as its default; an assigned one as its value. */
    load(&l, "max_peers = min_peers * 3\nmin_peers = 2\nmax_frame_size = max_frame_size / 8\n"
             "reconnect_delay = heartbeat_interval + reconnect_backoff[3]\n");
    if (l.rc) TN_FAIL("load failed: %s", l.err);
    TN_ASSERT_INT(l.c.max_peers, ==, 24);
    TN_ASSERT_INT(l.c.max_frame_size, ==, 1 << 20);
    TN_ASSERT_DBL(l.c.reconnect_delay, ==, 36);
    tn_config_free(&l.c);
    load(&l, "min_peers = 3\nmax_peers = min_peers + 1\n");
    if (l.rc) TN_FAIL("load failed: %s", l.err);
    TN_ASSERT_INT(l.c.max_peers, ==, 4);
    tn_config_free(&l.c);
    load(&l, "seeds = { \"1.2.3.4:5\" }\nfeatures = { seeds[1] }\n");
    if (l.rc) TN_FAIL("load failed: %s", l.err);
    TN_ASSERT_STR_EQ(l.c.features.v[0], "1.2.3.4:5");
    tn_config_free(&l.c);
    /* Reading a name that is not a key is a typo, not nil. */
    load(&l, "max_peers = 10\nmin_peers = max_pears\n");
    ASSERT_LOAD_ERROR(&l, 2, "unknown name 'max_pears' (did you mean 'max_peers'?)");
}

TN_TEST(config_lists)
{
    loaded_t l;
    load(&l, "seeds = {}\nfeatures = { \"a\", \"b\", \"c\" }\nfeatures = { \"d\" }\n");
    if (l.rc) TN_FAIL("load failed: %s", l.err);
    TN_ASSERT_INT(l.c.seeds.n, ==, 0);
    TN_ASSERT_INT(l.c.features.n, ==, 1); /* a second assignment replaces the list */
    TN_ASSERT_STR_EQ(l.c.features.v[0], "d");
    tn_config_free(&l.c);
    load(&l, "features = { \"a\", nil, \"c\" }\n");
    TN_ASSERT_RC(l.rc, TN_EINVAL);
    tn_config_free(&l.c);
    /* Bounded: more entries than the key allows are refused. */
    char text[2048] = "features = {";
    for (int k = 0; k < 65; k++) strcat(text, " \"f\",");
    strcat(text, " }\n");
    load(&l, text);
    ASSERT_LOAD_ERROR(&l, 1, "'features' has more than 64 entries");
}

TN_TEST(config_reconnect_backoff_list)
{
    loaded_t l;
    load(&l, "reconnect_backoff = { 1, 1.5, 3 }\n");
    if (l.rc) TN_FAIL("load failed: %s", l.err);
    TN_ASSERT_INT(l.c.reconnect_backoff.n, ==, 3);
    TN_ASSERT_DBL(l.c.reconnect_backoff.v[1], ==, 1.5);
    tn_config_free(&l.c);
    load(&l, "reconnect_backoff = {}\n");
    ASSERT_LOAD_ERROR(&l, 1, "'reconnect_backoff' must have 1 to 32 entries");
    load(&l, "reconnect_backoff = { 1, -2 }\n");
    ASSERT_LOAD_ERROR(&l, 1, "'reconnect_backoff' entry 2 must be a non-negative number");
    load(&l, "reconnect_backoff = { 1, true }\n");
    ASSERT_LOAD_ERROR(&l, 1, "'reconnect_backoff' entry 2 must be a non-negative number");
    load(&l, "reconnect_backoff = 5\n");
    ASSERT_LOAD_ERROR(&l, 1, "'reconnect_backoff' must be a list of numbers");
}

TN_TEST(config_missing_file)
{
    tn_config_t c;
    char err[256];
    TN_ASSERT_OK(tn_config_defaults(&c));
    TN_ASSERT_RC(tn_config_load(&c, "/nonexistent/timenet.lua", err, sizeof err), TN_EINVAL);
    TN_ASSERT_STR_HAS(err, "/nonexistent/timenet.lua");
    tn_config_free(&c);
}

TN_TEST(config_binary_chunk_refused)
{
    loaded_t l;
    load(&l, "\x1bLua\x54");
    TN_ASSERT_RC(l.rc, TN_EINVAL);
    TN_ASSERT_STR_HAS(l.err, "binary");
    tn_config_free(&l.c);
}

TN_TEST(config_print_is_loadable)
{
    /* `timenetd --print-config` output loads back to the same values. */
    loaded_t l;
    load(&l, "node_name = \"printer\"\nmax_peers = 33\nheartbeat_interval = 0.1\n"
             "seeds = { \"1.2.3.4:5\", \"[::1]:6\" }\nreconnect_backoff = { 1, 3.25 }\n");
    if (l.rc) TN_FAIL("load failed: %s", l.err);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    TN_ASSERT(f != NULL);
    tn_config_print(&l.c, f);
    fclose(f);
    loaded_t m;
    load(&m, text);
    if (m.rc) TN_FAIL("printed config does not load: %s", m.err);
    TN_ASSERT_STR_EQ(m.c.node_name, "printer");
    TN_ASSERT_INT(m.c.max_peers, ==, 33);
    TN_ASSERT_DBL(m.c.heartbeat_interval, ==, 0.1);
    TN_ASSERT_INT(m.c.seeds.n, ==, 2);
    TN_ASSERT_STR_EQ(m.c.seeds.v[1], "[::1]:6");
    TN_ASSERT_INT(m.c.reconnect_backoff.n, ==, 2);
    TN_ASSERT_DBL(m.c.reconnect_backoff.v[1], ==, 3.25);
    free(text);
    tn_config_free(&l.c);
    tn_config_free(&m.c);
}
