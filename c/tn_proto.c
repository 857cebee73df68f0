/* Prologue and message encoding/decoding (see tn_proto.h and doc/protocol.md). Decoders
 * check exact lengths: trailing bytes are as invalid as missing ones. */
#include "tn_proto.h"

void tn_prologue_encode(const tn_prologue_t *p, uint8_t out[TN_PROLOGUE_LEN])
{
    memcpy(out, p->magic, 4);
    tn_put_u16(out + 4, p->version);
    tn_put_u16(out + 6, p->min_version);
    tn_put_u64(out + 8, p->nonce);
}

int tn_prologue_check(const tn_prologue_t *ours, const uint8_t in[TN_PROLOGUE_LEN],
                      tn_prologue_t *theirs)
{
    memcpy(theirs->magic, in, 4);
    theirs->version = tn_get_u16(in + 4);
    theirs->min_version = tn_get_u16(in + 6);
    theirs->nonce = tn_get_u64(in + 8);
    if (memcmp(theirs->magic, ours->magic, 4) != 0) return TN_EMAGIC;
    if (theirs->min_version > theirs->version) return TN_EVERSION;
    /* Compatible when each side's version is at least the other's minimum. */
    if (theirs->version < ours->min_version || ours->version < theirs->min_version)
        return TN_EVERSION;
    return TN_OK;
}

int tn_msg_begin(tn_buf_t *b, uint16_t type, size_t *hdr_off)
{
    int rc = tn_buf_reserve(b, TN_MSG_HDR_LEN);
    if (rc) return rc;
    *hdr_off = b->len;
    tn_put_u16(b->p + b->len, type);
    tn_put_u32(b->p + b->len + 2, 0);
    b->len += TN_MSG_HDR_LEN;
    return TN_OK;
}

void tn_msg_finish(tn_buf_t *b, size_t hdr_off)
{
    tn_put_u32(b->p + hdr_off + 2, (uint32_t)(b->len - hdr_off - TN_MSG_HDR_LEN));
}

int tn_msg_append(tn_buf_t *b, uint16_t type, const void *payload, uint32_t len)
{
    int rc = tn_buf_reserve(b, TN_MSG_HDR_LEN + (size_t)len);
    if (rc) return rc;
    uint8_t *p = b->p + b->len;
    tn_put_u16(p, type);
    tn_put_u32(p + 2, len);
    if (len) memcpy(p + TN_MSG_HDR_LEN, payload, len);
    b->len += TN_MSG_HDR_LEN + (size_t)len;
    return TN_OK;
}

int tn_msg_next(const uint8_t *p, size_t n, size_t *off, uint16_t *type, const uint8_t **payload,
                uint32_t *len)
{
    if (*off == n) return 0;
    if (*off > n || n - *off < TN_MSG_HDR_LEN) return TN_EINVAL;
    const uint8_t *h = p + *off;
    uint32_t l = tn_get_u32(h + 2);
    if (l > n - *off - TN_MSG_HDR_LEN) return TN_EINVAL;
    *type = tn_get_u16(h);
    *len = l;
    *payload = h + TN_MSG_HDR_LEN;
    *off += TN_MSG_HDR_LEN + (size_t)l;
    return 1;
}

#define HELLO_FIXED 25 /* version 2 | flags 4 | height 8 | port 2 | time 8 | name_len 1 */

int tn_hello_encode(tn_buf_t *b, const tn_hello_t *h)
{
    size_t nl = strnlen(h->name, TN_NAME_MAX);
    uint8_t tmp[HELLO_FIXED + TN_NAME_MAX];
    tn_put_u16(tmp, h->version);
    tn_put_u32(tmp + 2, h->flags);
    tn_put_u64(tmp + 6, h->height);
    tn_put_u16(tmp + 14, h->listen_port);
    tn_put_u64(tmp + 16, h->time_ms);
    tmp[24] = (uint8_t)nl;
    memcpy(tmp + HELLO_FIXED, h->name, nl);
    return tn_msg_append(b, TN_MSG_HELLO, tmp, (uint32_t)(HELLO_FIXED + nl));
}

int tn_hello_decode(const uint8_t *p, uint32_t len, tn_hello_t *h)
{
    if (len < HELLO_FIXED) return TN_EINVAL;
    uint8_t nl = p[24];
    if (nl > TN_NAME_MAX || len != HELLO_FIXED + (uint32_t)nl) return TN_EINVAL;
    h->version = tn_get_u16(p);
    h->flags = tn_get_u32(p + 2);
    h->height = tn_get_u64(p + 6);
    h->listen_port = tn_get_u16(p + 14);
    h->time_ms = tn_get_u64(p + 16);
    for (unsigned i = 0; i < nl; i++) {
        uint8_t c = p[HELLO_FIXED + i];
        if (c < 0x20 || c > 0x7e) return TN_EINVAL; /* names end up in logs */
        h->name[i] = (char)c;
    }
    h->name[nl] = 0;
    return TN_OK;
}

int tn_u64_msg_encode(tn_buf_t *b, uint16_t type, uint64_t v)
{
    uint8_t tmp[8];
    tn_put_u64(tmp, v);
    return tn_msg_append(b, type, tmp, 8);
}

int tn_u64_msg_decode(const uint8_t *p, uint32_t len, uint64_t *v)
{
    if (len != 8) return TN_EINVAL;
    *v = tn_get_u64(p);
    return TN_OK;
}

int tn_inv_decode(const uint8_t *p, uint32_t len)
{
    if (len < 2) return TN_EINVAL;
    uint32_t n = tn_get_u16(p);
    if (n == 0 || n > TN_INV_MAX || len != 2 + n * TN_INV_ENTRY) return TN_EINVAL;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t k = p[2 + i * TN_INV_ENTRY];
        if (k != TN_INV_TX && k != TN_INV_BLOCK) return TN_EINVAL;
    }
    return (int)n;
}

int tn_height_decode(const uint8_t *p, uint32_t len, uint64_t *height, const uint8_t **tip)
{
    if (len != 40) return TN_EINVAL;
    *height = tn_get_u64(p);
    *tip = p + 8;
    return TN_OK;
}

int tn_locator_decode(const uint8_t *p, uint32_t len)
{
    if (len < 1) return TN_EINVAL;
    uint32_t n = p[0];
    if (n == 0 || n > TN_LOCATOR_MAX || len != 1 + 32 * n) return TN_EINVAL;
    return (int)n;
}

int tn_peers_decode(const uint8_t *p, uint32_t len)
{
    if (len < 2) return TN_EINVAL;
    uint32_t n = tn_get_u16(p);
    if (n > TN_PEX_MAX || len != 2 + n * TN_PEER_ENTRY) return TN_EINVAL;
    return (int)n;
}

void tn_peers_entry(const uint8_t *p, int i, tn_peer_entry_t *e)
{
    const uint8_t *q = p + 2 + (size_t)i * TN_PEER_ENTRY;
    memcpy(e->ip, q, 16);
    e->port = tn_get_u16(q + 16);
    e->seen_s = tn_get_u32(q + 18);
    memcpy(e->id, q + 22, 32);
}

void tn_peers_entry_put(uint8_t out[TN_PEER_ENTRY], const tn_peer_entry_t *e)
{
    memcpy(out, e->ip, 16);
    tn_put_u16(out + 16, e->port);
    tn_put_u32(out + 18, e->seen_s);
    memcpy(out + 22, e->id, 32);
}

const char *tn_msg_name(uint16_t type)
{
    static const char *const core[] = {"auth", "hello", "ping", "pong"};
    static const char *const chain[] = {"inv",        "getdata",    "tx",     "block",
                                        "notfound",   "get_height", "height", "get_blocks",
                                        "blocks",     "get_mempool"};
    if (type < TN_ARRAY_LEN(core)) return core[type];
    if (type >= TN_MSG_INV && type < TN_MSG_INV + TN_ARRAY_LEN(chain))
        return chain[type - TN_MSG_INV];
    if (type == TN_MSG_GET_PEERS) return "get_peers";
    if (type == TN_MSG_PEERS) return "peers";
    return NULL;
}
