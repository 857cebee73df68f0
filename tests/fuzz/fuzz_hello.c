/* Fuzz target `hello`: tn_hello_decode on a hello payload (the first message of every
 * session). What it accepts must carry a printable NUL-terminated name of at most
 * TN_NAME_MAX bytes and re-encode to exactly the input. */
#include "fz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    tn_hello_t h;
    memset(&h, 0xa5, sizeof h);
    if (tn_hello_decode(data, (uint32_t)size, &h) != TN_OK) return 0;
    size_t nl = strnlen(h.name, sizeof h.name);
    FZ_CHECK(nl <= TN_NAME_MAX, "name not terminated");
    for (size_t i = 0; i < nl; i++)
        FZ_CHECK(h.name[i] >= 0x20 && h.name[i] < 0x7f, "unprintable name byte %zu", i);
    tn_buf_t b;
    tn_buf_init(&b, 4096);
    FZ_CHECK(tn_hello_encode(&b, &h) == TN_OK, "re-encode");
    FZ_CHECK(b.len == TN_MSG_HDR_LEN + size && memcmp(b.p + TN_MSG_HDR_LEN, data, size) == 0,
             "hello re-encodes to other bytes");
    tn_buf_free(&b);
    return 0;
}
