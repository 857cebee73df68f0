/* Fuzz target `msg`: the messages inside one decrypted frame — tn_msg_next framing, then
 * each core type's decoder (hello, ping, pong; inv, getdata, notfound, height, get_blocks,
 * tx, block, and the blocks list walk of tn_sync.c) and tn_msg_name. Input: the frame
 * plaintext.
 * Every message must lie inside the frame, and what a decoder accepts must re-encode to the
 * exact bytes it came from (decoders are strict: no trailing or missing bytes). */
#include "fz_common.h"
#include "tn_tx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reencode(const tn_buf_t *b, const uint8_t *hdr, uint32_t len)
{
    FZ_CHECK(b->len == TN_MSG_HDR_LEN + (size_t)len && memcmp(b->p, hdr, b->len) == 0,
             "decoded message re-encodes to other bytes (%zu vs %u)", b->len, TN_MSG_HDR_LEN + len);
}

/* The chain messages: what a decoder accepts must have exactly the documented layout. */
static void chain_message(uint16_t type, const uint8_t *p, uint32_t len)
{
    int k;
    uint64_t height;
    const uint8_t *tip;
    tn_tx_t tx;
    tn_block_hdr_t h;
    switch (type) {
    case TN_MSG_INV:
    case TN_MSG_GETDATA:
    case TN_MSG_NOTFOUND:
        if ((k = tn_inv_decode(p, len)) < 0) break;
        FZ_CHECK(k >= 1 && k <= TN_INV_MAX && len == 2 + (uint32_t)k * TN_INV_ENTRY, "inv %d", k);
        for (int i = 0; i < k; i++) {
            uint8_t kind;
            const uint8_t *id;
            tn_inv_entry(p, i, &kind, &id);
            FZ_CHECK((kind == TN_INV_TX || kind == TN_INV_BLOCK) && id + 32 <= p + len,
                     "inv entry %d", i);
        }
        break;
    case TN_MSG_HEIGHT:
        if (tn_height_decode(p, len, &height, &tip) == TN_OK)
            FZ_CHECK(len == 40 && tip == p + 8, "height layout");
        break;
    case TN_MSG_GET_BLOCKS:
        if ((k = tn_locator_decode(p, len)) >= 0)
            FZ_CHECK(k >= 1 && k <= TN_LOCATOR_MAX && len == 1 + 32 * (uint32_t)k, "locator");
        break;
    case TN_MSG_TX:
        if (tn_tx_parse(p, len, 1u << 20, &tx) == TN_OK)
            FZ_CHECK(tx.raw == p && tx.len == len, "tx outside its message");
        break;
    case TN_MSG_BLOCK:
        tn_block_parse(p, len, 8u << 20, 1u << 20, &h);
        break;
    case TN_MSG_BLOCKS: { /* tn_sync.c tn_sync_on_blocks: count u16 | count x (len u32 | block) */
        if (len < 2) break;
        uint32_t count = tn_get_u16(p), off = 2;
        for (uint32_t i = 0; i < count && count <= TN_BLOCKS_MAX; i++) {
            if (len - off < 4 || tn_get_u32(p + off) > len - off - 4) break;
            uint32_t bl = tn_get_u32(p + off);
            tn_block_parse(p + off + 4, bl, 8u << 20, 1u << 20, &h);
            off += 4 + bl;
        }
        FZ_CHECK(off <= len, "blocks walk past the message");
        break;
    }
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20)) return 0;
    size_t off = 0, prev = 0;
    uint16_t type;
    const uint8_t *payload;
    uint32_t len;
    int rc;
    while ((rc = tn_msg_next(data, size, &off, &type, &payload, &len)) == 1) {
        FZ_CHECK(payload == data + prev + TN_MSG_HDR_LEN && off == prev + TN_MSG_HDR_LEN + len &&
                     off <= size,
                 "message outside the frame");
        const uint8_t *hdr = data + prev;
        prev = off;
        const char *name = tn_msg_name(type);
        FZ_CHECK(!name || type < TN_MSG_EXPERIMENT_FIRST, "named experiment type %04x", type);
        tn_buf_t b;
        tn_buf_init(&b, 1u << 20);
        if (type == TN_MSG_HELLO) {
            tn_hello_t h;
            if (tn_hello_decode(payload, len, &h) == TN_OK) {
                FZ_CHECK(tn_hello_encode(&b, &h) == TN_OK, "hello re-encode");
                check_reencode(&b, hdr, len);
            }
        } else if (type == TN_MSG_PING || type == TN_MSG_PONG) {
            uint64_t v;
            if (tn_u64_msg_decode(payload, len, &v) == TN_OK) {
                FZ_CHECK(tn_u64_msg_encode(&b, type, v) == TN_OK, "u64 re-encode");
                check_reencode(&b, hdr, len);
            }
        }
        chain_message(type, payload, len);
        tn_buf_free(&b);
    }
    FZ_CHECK(rc == 0 || rc == TN_EINVAL, "rc %d", rc);
    FZ_CHECK(rc != 0 || off == size, "end of frame before its last byte");
    return 0;
}
