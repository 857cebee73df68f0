/* Fuzz target `ctl`: the control socket's request path without a node — the line framing of
 * tn_ctl.c on_read (requests end at '\n', a line reaching TN_CTL_LINE_MAX closes the client),
 * the parse and checks of handle_line (JSON object with a "cmd" string, verb lookup with
 * tn_ctl_verb) and the verbs' argument parsers (addresses with tn_addr_parse /
 * tn_addr_parse_ip, node ids with tn_unhex), then the reply printed as the socket would.
 * handle_line and the arg helpers are static, so their few lines are repeated here; the verbs
 * themselves act on a running node: only `help`, which reads none of it, is called.
 * Every reply must be one line of valid JSON. */
#include "fz_common.h"
#include "tn_addr.h"
#include "tn_ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* tn_ctl_verbs.c arg_addr */
static int arg_addr(const cJSON *req, cJSON *reply, const char *name, bool need_port)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, name);
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
    tn_addr_t a;
    if (!s) return tn_ctl_error(reply, "missing \"%s\"", name);
    if (tn_addr_parse(s, &a) == 0 && (a.port || !need_port)) {
        char back[TN_ADDR_STRLEN];
        tn_addr_t b;
        tn_addr_fmt(&a, back);
        FZ_CHECK(tn_addr_parse(back, &b) == 0 && tn_addr_eq(&a, &b),
                 "address \"%s\" prints as \"%s\", which does not parse back", s, back);
        return 0;
    }
    if (!need_port && tn_addr_parse_ip(s, &a) == 0) return 0;
    return tn_ctl_error(reply, "\"%s\" = \"%.80s\" is not %s", name, s,
                        need_port ? "an address IP:port" : "an IP or IP:port");
}

/* tn_ctl.c handle_line, dispatching only to the verbs that need no node. */
static void handle_line(const char *line, size_t len)
{
    cJSON *reply = cJSON_CreateObject();
    cJSON *req = cJSON_ParseWithLength(line, len);
    int rc = -1;
    const cJSON *cmd = req ? cJSON_GetObjectItemCaseSensitive(req, "cmd") : NULL;
    if (!req || !cJSON_IsObject(req)) {
        tn_ctl_error(reply, "request is not a JSON object");
    } else if (!cJSON_IsString(cmd)) {
        tn_ctl_error(reply, "request has no \"cmd\" string");
    } else {
        const char *verb = cmd->valuestring;
        tn_ctl_verb_fn fn = tn_ctl_verb(verb);
        if (!fn) {
            tn_ctl_error(reply, "unknown command '%.64s' (try \"help\")", verb);
        } else if (strcmp(verb, "help") == 0) {
            rc = fn(NULL, req, reply); /* the one verb that reads nothing of the node */
        } else {
            /* the argument parsers the verbs share: node ids, then addresses (with a port for
             * the verbs that dial) */
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "id");
            uint8_t idb[TN_ID_LEN];
            bool dials = strcmp(verb, "connect") == 0 || strcmp(verb, "addnode") == 0;
            if (cJSON_IsString(id))
                rc = tn_unhex(idb, TN_ID_LEN, id->valuestring) == 0
                         ? 0
                         : tn_ctl_error(reply, "\"id\" is not a node id");
            else if (dials || cJSON_GetObjectItemCaseSensitive(req, "addr"))
                rc = arg_addr(req, reply, "addr", dials);
            else
                rc = 0;
        }
    }
    cJSON_AddBoolToObject(reply, "ok", rc == 0);
    char *text = cJSON_PrintUnformatted(reply);
    FZ_CHECK(text != NULL, "reply does not print");
    FZ_CHECK(strchr(text, '\n') == NULL, "reply is more than one line");
    cJSON *back = cJSON_Parse(text);
    FZ_CHECK(back != NULL, "reply is not JSON: %s", text);
    cJSON_Delete(back);
    free(text);
    cJSON_Delete(reply);
    cJSON_Delete(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > TN_CTL_LINE_MAX) return 0;
    /* tn_ctl.c on_read: every complete line is a request; the rest waits for more bytes. */
    size_t off = 0;
    for (;;) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        if (!nl) break;
        size_t len = (size_t)(nl - (data + off));
        char *line = malloc(len ? len : 1); /* exactly the line: overreads are caught */
        if (!line) abort();
        if (len) memcpy(line, data + off, len);
        handle_line(line, len);
        free(line);
        off += len + 1;
    }
    return 0;
}
