/* Control socket verbs: the one table of commands the node answers. Each verb reads its
 * arguments from the request object and fills the reply; errors are plain sentences. */
#include "tn_chain.h"
#include "tn_ctl.h"
#include "tn_disc.h"
#include "tn_log.h"
#include "tn_metrics.h"
#include "tn_node.h"
#include "tn_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef TN_VERSION
#define TN_VERSION "0.1.0"
#endif

static const char *STATE_NAMES[] = {"connecting", "delayed", "flight", "auth", "open", "closing"};

static const char *arg_str(const cJSON *req, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "IP:port", "[IPv6]:port" or a bare IP (port 0 = any port). */
static int arg_addr(const cJSON *req, cJSON *reply, const char *name, tn_addr_t *a, bool need_port)
{
    const char *s = arg_str(req, name);
    if (!s) return tn_ctl_error(reply, "missing \"%s\"", name);
    if (tn_addr_parse(s, a) == 0 && (a->port || !need_port)) return 0;
    if (!need_port && tn_addr_parse_ip(s, a) == 0) return 0;
    return tn_ctl_error(reply, "\"%s\" = \"%.80s\" is not %s", name, s,
                        need_port ? "an address IP:port" : "an IP or IP:port");
}

static int v_status(tn_node_t *n, const cJSON *req, cJSON *r)
{
    (void)req;
    int in = 0, out = 0;
    for (tn_peer_t *p = n->peers; p; p = p->next)
        if (p->session) p->session->outbound ? out++ : in++;
    cJSON_AddStringToObject(r, "name", n->cfg->node_name);
    cJSON_AddStringToObject(r, "network", n->cfg->network);
    cJSON_AddStringToObject(r, "id", n->id_hex);
    cJSON_AddStringToObject(r, "listen", n->listening ? n->cfg->listen : "");
    cJSON_AddStringToObject(r, "data_dir", n->cfg->data_dir);
    cJSON_AddStringToObject(r, "metrics", n->ops ? n->ops->metrics_addr : "");
    cJSON_AddStringToObject(r, "version", TN_VERSION);
    cJSON_AddNumberToObject(r, "protocol", TN_PROTO_VERSION);
    cJSON_AddNumberToObject(r, "pid", (double)getpid());
    cJSON_AddNumberToObject(r, "height", (double)n->height);
    cJSON_AddNumberToObject(r, "uptime_s", (double)(uv_now(n->loop) - n->started_ms) / 1000.0);
    cJSON *p = cJSON_AddObjectToObject(r, "peers");
    cJSON_AddNumberToObject(p, "connected", n->n_open);
    cJSON_AddNumberToObject(p, "inbound", in);
    cJSON_AddNumberToObject(p, "outbound", out);
    cJSON_AddNumberToObject(p, "masternodes",
                            tn_node_masternodes(n) - (tn_chain_is_masternode(n, n->id) ? 1 : 0));
    cJSON_AddNumberToObject(p, "pending_inbound", n->n_inbound_pending);
    cJSON_AddNumberToObject(r, "sessions", n->n_sessions);
    cJSON *pol = cJSON_AddObjectToObject(r, "policy");
    tn_policy_status(n->policy, pol);
    return 0;
}

static void session_row(tn_node_t *n, tn_session_t *s, cJSON *row)
{
    char a[TN_ADDR_STRLEN], sid[9], idhex[2 * TN_ID_LEN + 1];
    tn_addr_fmt(&s->remote, a);
    cJSON_AddStringToObject(row, "addr", a);
    tn_addr_fmt(&s->local, a);
    cJSON_AddStringToObject(row, "local", a);
    cJSON_AddStringToObject(row, "dir", s->outbound ? "out" : "in");
    cJSON_AddStringToObject(row, "state", STATE_NAMES[s->state]);
    cJSON_AddNumberToObject(row, "session", (double)s->gen);
    cJSON_AddBoolToObject(row, "active", s->peer != NULL);
    if (s->state == TN_SS_OPEN) {
        tn_hex(idhex, s->their_id, TN_ID_LEN);
        cJSON_AddStringToObject(row, "id", idhex);
        cJSON_AddStringToObject(row, "short_id", tn_node_short_id(s->their_id, sid));
        cJSON_AddNumberToObject(row, "connected_s",
                                (double)(uv_now(n->loop) - s->opened_ms) / 1000.0);
    }
    cJSON_AddBoolToObject(row, "hello", s->hello);
    if (s->hello) {
        cJSON_AddStringToObject(row, "name", s->their_name);
        cJSON_AddBoolToObject(row, "masternode", tn_chain_is_masternode(n, s->their_id));
        cJSON_AddNumberToObject(row, "height", (double)s->their_height);
        cJSON_AddNumberToObject(row, "listen_port", s->their_port);
    }
    cJSON_AddNumberToObject(row, "rtt_ms", s->rtt_ms);
    cJSON_AddNumberToObject(row, "pings", s->pings);
    cJSON_AddNumberToObject(row, "pongs", s->pongs);
    cJSON_AddNumberToObject(row, "late", s->late);
    cJSON_AddNumberToObject(row, "missed", s->missed);
    cJSON_AddNumberToObject(row, "bytes_in", (double)s->bytes_in);
    cJSON_AddNumberToObject(row, "bytes_out", (double)s->bytes_out);
    cJSON_AddNumberToObject(row, "msgs_in", (double)s->msgs_in);
    cJSON_AddNumberToObject(row, "msgs_out", (double)s->msgs_out);
    cJSON_AddNumberToObject(row, "score", s->score);
    cJSON_AddNumberToObject(row, "strikes", tn_strikes_total(n, &s->remote));
    tn_peer_t *p = s->peer;
    if (p) {
        if (p->tag[0]) cJSON_AddStringToObject(row, "tag", p->tag);
        cJSON_AddNumberToObject(row, "disconnects", p->disconnects);
        cJSON_AddNumberToObject(row, "sessions_total", p->sessions);
        tn_quality_json(n, s, s->their_id, row);
    }
}

/* peers: active sessions; {"all": true} adds sessions still in their handshake. */
static int v_peers(tn_node_t *n, const cJSON *req, cJSON *r)
{
    bool all = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "all"));
    cJSON *rows = cJSON_AddArrayToObject(r, "peers");
    for (tn_session_t *s = n->sessions; s; s = s->next) {
        if (!all && !s->peer) continue;
        cJSON *row = cJSON_CreateObject();
        session_row(n, s, row);
        cJSON_AddItemToArray(rows, row);
    }
    return 0;
}

static int v_connect(tn_node_t *n, const cJSON *req, cJSON *r)
{
    tn_addr_t a;
    if (arg_addr(req, r, "addr", &a, true)) return -1;
    int rc = tn_targets_dial(n, &a, false);
    switch (rc) {
    case TN_OK:
        cJSON_AddStringToObject(r, "result", "dialing");
        return 0;
    case TN_EALREADY:
        return tn_ctl_error(r, "already connected or dialing");
    case TN_ESELF:
        return tn_ctl_error(r, "address is this node");
    case TN_ELIMIT:
        return tn_ctl_error(r, "address is blocked");
    default:
        return tn_ctl_error(r, "dial failed: %s", tn_strerror(rc));
    }
}

static int v_disconnect(tn_node_t *n, const cJSON *req, cJSON *r)
{
    const char *id = arg_str(req, "id");
    uint8_t idb[TN_ID_LEN];
    int count;
    if (id) {
        if (tn_unhex(idb, TN_ID_LEN, id) != 0) return tn_ctl_error(r, "\"id\" is not a node id");
        count = tn_node_disconnect(n, NULL, idb, "disconnected by operator", false);
    } else {
        tn_addr_t a;
        if (arg_addr(req, r, "addr", &a, false)) return -1;
        count = tn_node_disconnect(n, &a, NULL, "disconnected by operator", false);
    }
    if (count == 0) return tn_ctl_error(r, "no such session");
    cJSON_AddNumberToObject(r, "closed", count);
    return 0;
}

static int v_block(tn_node_t *n, const cJSON *req, cJSON *r)
{
    tn_addr_t a;
    if (arg_addr(req, r, "addr", &a, false)) return -1;
    int rc = tn_node_block(n, &a);
    if (rc == TN_ENOMEM) return tn_ctl_error(r, "block list is full (%d)", TN_BLOCKED_MAX);
    cJSON_AddBoolToObject(r, "already", rc == TN_EALREADY);
    return 0;
}

static int v_unblock(tn_node_t *n, const cJSON *req, cJSON *r)
{
    tn_addr_t a;
    if (arg_addr(req, r, "addr", &a, false)) return -1;
    if (tn_node_unblock(n, &a) != TN_OK) return tn_ctl_error(r, "address is not blocked");
    return 0;
}

static int v_blocked(tn_node_t *n, const cJSON *req, cJSON *r)
{
    (void)req;
    cJSON *list = cJSON_AddArrayToObject(r, "blocked");
    for (int i = 0; i < n->n_blocked; i++) {
        char ip[TN_ADDR_STRLEN];
        tn_addr_fmt_ip(&n->blocked[i], ip);
        cJSON_AddItemToArray(list, cJSON_CreateString(ip));
    }
    return 0;
}

static int v_strikes(tn_node_t *n, const cJSON *req, cJSON *r)
{
    (void)req;
    cJSON *list = cJSON_AddArrayToObject(r, "strikes");
    for (int i = 0; i < n->n_strikes; i++) {
        cJSON *row = cJSON_CreateObject();
        char ip[TN_ADDR_STRLEN];
        tn_addr_fmt_ip(&n->strikes[i].ip, ip);
        cJSON_AddStringToObject(row, "ip", ip);
        for (int k = 0; k < TN_MIS__COUNT; k++)
            cJSON_AddNumberToObject(row, tn_misbehavior_name((tn_misbehavior_t)k),
                                    n->strikes[i].count[k]);
        cJSON_AddItemToArray(list, row);
    }
    return 0;
}

static int v_metrics(tn_node_t *n, const cJSON *req, cJSON *r)
{
    tn_ops_collect(n);
    const char *format = arg_str(req, "format");
    if (format && strcmp(format, "prometheus") == 0) {
        tn_buf_t b;
        tn_buf_init(&b, TN_HTTP_BODY_MAX);
        int rc = tn_metrics_prometheus(&b);
        if (rc == TN_OK) rc = tn_buf_append(&b, "", 1); /* NUL for cJSON */
        if (rc == TN_OK) cJSON_AddStringToObject(r, "text", (const char *)b.p);
        tn_buf_free(&b);
        return rc == TN_OK ? 0 : tn_ctl_error(r, "exposition too large");
    }
    if (format && strcmp(format, "json") != 0)
        return tn_ctl_error(r, "\"format\" must be json or prometheus");
    cJSON *m = cJSON_AddObjectToObject(r, "metrics");
    for (int i = 0; i < tn_metrics_count(); i++) {
        const tn_metric_t *x = tn_metrics_at(i);
        cJSON_AddNumberToObject(m, x->name,
                                x->kind == TN_METRIC_HISTOGRAM ? (double)x->count : x->value);
    }
    return 0;
}

static int v_policy_status(tn_node_t *n, const cJSON *req, cJSON *r)
{
    (void)req;
    tn_policy_status(n->policy, cJSON_AddObjectToObject(r, "policy"));
    return 0;
}

static void reload_done(void *ud, bool ok, const char *msg)
{
    tn_ctl_hold_t *h = ud;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, ok ? "result" : "error", msg);
    tn_ctl_answer(*h, r, ok);
    cJSON_Delete(r);
    free(h);
}

/* Synchronous for the caller: the reply comes when the new generation is in force or was
 * rejected (with file:line, and the generation still active). */
static int v_policy_reload(tn_node_t *n, const cJSON *req, cJSON *r)
{
    (void)req;
    tn_ctl_hold_t *h = malloc(sizeof(*h));
    if (!h) return tn_ctl_error(r, "out of memory");
    *h = tn_ctl_hold(n);
    tn_policy_reload(n->policy, "control socket", reload_done, h);
    return TN_CTL_LATER;
}

static int v_bans(tn_node_t *n, const cJSON *req, cJSON *r)
{
    (void)req;
    cJSON *list = cJSON_AddArrayToObject(r, "bans");
    uint64_t now = tn_wall_ms();
    for (int i = 0; i < n->n_bans; i++) {
        const tn_ban_t *b = &n->bans[i];
        if (b->until_ms <= now) continue;
        char ip[TN_ADDR_STRLEN];
        tn_addr_fmt_ip(&b->ip, ip);
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "ip", ip);
        cJSON_AddNumberToObject(row, "remaining_s", (double)(b->until_ms - now) / 1000.0);
        cJSON_AddStringToObject(row, "reason", b->reason);
        cJSON_AddNumberToObject(row, "count", b->count);
        cJSON_AddItemToArray(list, row);
    }
    return 0;
}

/* ban: {"addr": IP, "seconds": n} (default ban_long); unban: {"addr": IP}; clearbans. */
static int v_ban(tn_node_t *n, const cJSON *req, cJSON *r)
{
    tn_addr_t a;
    if (arg_addr(req, r, "addr", &a, false)) return -1;
    a.port = 0;
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(req, "seconds");
    double seconds = cJSON_IsNumber(sec) ? sec->valuedouble : n->cfg->ban_long;
    if (!(seconds >= 1 && seconds <= 315360000))
        return tn_ctl_error(r, "\"seconds\" must be 1 to 315360000 (10 years)");
    if (tn_node_whitelisted(n, &a)) return tn_ctl_error(r, "address is whitelisted");
    const char *reason = arg_str(req, "reason");
    char why[96];
    snprintf(why, sizeof why, "operator%s%.80s", reason ? ": " : "", reason ? reason : "");
    tn_bans_add(n, &a, seconds, why);
    for (int i = 0; i < n->n_bans; i++)
        if (tn_addr_same_ip(&n->bans[i].ip, &a))
            cJSON_AddNumberToObject(r, "remaining_s",
                                    (double)(n->bans[i].until_ms - tn_wall_ms()) / 1000.0);
    return 0;
}

static int v_unban(tn_node_t *n, const cJSON *req, cJSON *r)
{
    tn_addr_t a;
    if (arg_addr(req, r, "addr", &a, false)) return -1;
    if (!tn_bans_active(n, &a)) return tn_ctl_error(r, "address is not banned");
    tn_bans_remove(n, &a);
    char ip[TN_ADDR_STRLEN];
    tn_addr_fmt_ip(&a, ip);
    tn_info("Unbanned %s (operator)", ip);
    return 0;
}

static int v_clearbans(tn_node_t *n, const cJSON *req, cJSON *r)
{
    (void)req;
    int count = tn_bans_clear(n);
    tn_info("Cleared all bans (operator): %d were active", count);
    cJSON_AddNumberToObject(r, "cleared", count);
    return 0;
}

/* addnode: {"addr": "IP:port", "action": "add"|"remove"|"onetry"} as in bitcoin-cli. */
static int v_addnode(tn_node_t *n, const cJSON *req, cJSON *r)
{
    tn_addr_t a;
    if (arg_addr(req, r, "addr", &a, true)) return -1;
    const char *action = arg_str(req, "action");
    if (!action) action = "add";
    int rc;
    if (strcmp(action, "onetry") == 0)
        rc = tn_targets_dial(n, &a, false);
    else if (strcmp(action, "add") == 0)
        rc = tn_addnodes_add(n, &a);
    else if (strcmp(action, "remove") == 0)
        rc = tn_addnodes_remove(n, &a);
    else
        return tn_ctl_error(r, "\"action\" must be add, remove or onetry");
    switch (rc) {
    case TN_OK:
        return 0;
    case TN_EALREADY:
        return tn_ctl_error(r, strcmp(action, "add") == 0 ? "node already added"
                                                          : "already connected or dialing");
    case TN_ENOTFOUND:
        return tn_ctl_error(r, "node has not been added");
    case TN_ESELF:
        return tn_ctl_error(r, "address is this node");
    case TN_ELIMIT:
        return tn_ctl_error(r, "address is banned or blocked");
    case TN_ENOMEM:
        return tn_ctl_error(r, "too many added nodes (%d)", TN_ADDNODES_MAX);
    default:
        return tn_ctl_error(r, "addnode failed: %s", tn_strerror(rc));
    }
}

static int v_addednodes(tn_node_t *n, const cJSON *req, cJSON *r)
{
    (void)req;
    tn_addnodes_list(n, cJSON_AddArrayToObject(r, "nodes"));
    return 0;
}

static void config_reload_done(void *ud, bool ok, cJSON *res)
{
    tn_ctl_hold_t *h = ud;
    tn_ctl_answer(*h, res, ok);
    free(h);
}

/* Answers once the new values are in force (or why nothing changed). */
static int v_config_reload(tn_node_t *n, const cJSON *req, cJSON *r)
{
    (void)req;
    tn_ctl_hold_t *h = malloc(sizeof(*h));
    if (!h) return tn_ctl_error(r, "out of memory");
    *h = tn_ctl_hold(n);
    tn_reload_config(n, "control socket", config_reload_done, h);
    return TN_CTL_LATER;
}

/* The config in force, as a loadable file with every key and its documentation. */
static int v_config(tn_node_t *n, const cJSON *req, cJSON *r)
{
    (void)req;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return tn_ctl_error(r, "out of memory");
    tn_config_print(n->cfg, f);
    fclose(f);
    cJSON_AddStringToObject(r, "file", n->cfg->path ? n->cfg->path : "");
    cJSON_AddStringToObject(r, "config", text ? text : "");
    free(text);
    return 0;
}

static void on_stop_closed(uv_handle_t *h)
{
    free(h);
}

static void on_stop_timer(uv_timer_t *t)
{
    tn_node_stop(t->data, "control socket");
    uv_close((uv_handle_t *)t, on_stop_closed);
}

/* Stops on the next loop iteration, so the reply reaches the client before the control
 * socket closes. */
static int v_stop(tn_node_t *n, const cJSON *req, cJSON *r)
{
    (void)req;
    uv_timer_t *t = malloc(sizeof(*t));
    if (!t) return tn_ctl_error(r, "out of memory");
    uv_timer_init(n->loop, t);
    t->data = n;
    uv_timer_start(t, on_stop_timer, 0, 0);
    return 0;
}

static int v_help(tn_node_t *n, const cJSON *req, cJSON *r);

static const struct {
    const char *name;
    tn_ctl_verb_fn fn;
    const char *help;
} VERBS[] = {
    {"help", v_help, "this list"},
    {"status", v_status, "node name, network, id, height, peer counts, uptime"},
    {"peers", v_peers, "one row per active session; {\"all\":true} adds handshakes"},
    {"connect", v_connect, "{\"addr\":\"IP:port\"} dial once"},
    {"disconnect", v_disconnect, "{\"addr\":\"IP[:port]\"} or {\"id\":\"hex\"} close sessions"},
    {"block", v_block, "{\"addr\":\"IP\"} refuse and drop every connection with an IP"},
    {"unblock", v_unblock, "{\"addr\":\"IP\"} lift a block"},
    {"blocked", v_blocked, "blocked IPs"},
    {"strikes", v_strikes, "misbehaviour counts per IP"},
    {"metrics", v_metrics, "every metric by name; {\"format\":\"prometheus\"}: the exposition"},
    {"policy_status", v_policy_status, "policy generation, per-hook calls/errors, breaker"},
    {"policy_reload", v_policy_reload, "reload the policy now; answers when done or rejected"},
    {"bans", v_bans, "active bans"},
    {"ban", v_ban, "{\"addr\":\"IP\",\"seconds\":n,\"reason\":\"..\"} ban (default ban_long)"},
    {"unban", v_unban, "{\"addr\":\"IP\"} lift a ban"},
    {"clearbans", v_clearbans, "lift every ban"},
    {"addnode", v_addnode,
     "{\"addr\":\"IP:port\",\"action\":\"add|remove|onetry\"} keep a peer connected, stored"},
    {"addednodes", v_addednodes, "peers added with addnode"},
    {"addrs", tn_ctl_v_addrs,
     "the address table: counts, discovery sources, entries ({\"limit\":n}, default 100)"},
    {"config_reload", v_config_reload,
     "re-read the config file: live keys apply now, others are listed as needing a restart"},
    {"config", v_config, "the config in force, as a config file"},
    {"chain", tn_ctl_v_chain, "height, tip, recent blocks, reorgs"},
    {"mempool", tn_ctl_v_mempool, "pending transactions; {\"ids\":true} lists them"},
    {"tx_submit", tn_ctl_v_tx_submit, "{\"hex\":\"...\"} submit a signed transaction"},
    {"stop", v_stop, "graceful shutdown"},
};

static int v_help(tn_node_t *n, const cJSON *req, cJSON *r)
{
    (void)n;
    (void)req;
    cJSON *o = cJSON_AddObjectToObject(r, "verbs");
    for (size_t i = 0; i < TN_ARRAY_LEN(VERBS); i++)
        cJSON_AddStringToObject(o, VERBS[i].name, VERBS[i].help);
    return 0;
}

tn_ctl_verb_fn tn_ctl_verb(const char *name)
{
    for (size_t i = 0; i < TN_ARRAY_LEN(VERBS); i++)
        if (strcmp(VERBS[i].name, name) == 0) return VERBS[i].fn;
    return NULL;
}

void tn_ctl_verbs_list(cJSON *array)
{
    for (size_t i = 0; i < TN_ARRAY_LEN(VERBS); i++)
        cJSON_AddItemToArray(array, cJSON_CreateString(VERBS[i].name));
}
