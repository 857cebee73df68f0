/* Shared basics: big-endian helpers, hex, error strings (tn_common.h). */
#include "tn_test.h"

TN_TEST(common_big_endian)
{
    uint8_t b[8];
    tn_put_u16(b, 0x0102);
    TN_ASSERT_HEX(b, 2, "0102");
    tn_put_u32(b, 0x01020304);
    TN_ASSERT_HEX(b, 4, "01020304");
    tn_put_u64(b, 0x0102030405060708ull);
    TN_ASSERT_HEX(b, 8, "0102030405060708");
    TN_ASSERT_U64(tn_get_u64(b), ==, 0x0102030405060708ull);
    TN_ASSERT_U64(tn_get_u32(b + 4), ==, 0x05060708u);
    TN_ASSERT_U64(tn_get_u16(b + 6), ==, 0x0708u);
    tn_put_u64(b, UINT64_MAX);
    TN_ASSERT_U64(tn_get_u64(b), ==, UINT64_MAX);
    tn_put_u32(b, 0xFFFFFFFFu);
    TN_ASSERT_U64(tn_get_u32(b), ==, 0xFFFFFFFFu);
}

TN_TEST(common_hex_roundtrip)
{
    uint8_t in[4] = {0x00, 0xab, 0x7f, 0xff}, out[4];
    char hex[9];
    tn_hex(hex, in, 4);
    TN_ASSERT_STR_EQ(hex, "00ab7fff");
    TN_ASSERT_OK(tn_unhex(out, 4, "00AB7fff"));
    TN_ASSERT_MEM_EQ(out, in, 4);
}

TN_TEST(common_unhex_rejects)
{
    uint8_t out[4];
    TN_ASSERT_RC(tn_unhex(out, 4, "00ab7f"), TN_EINVAL);     /* short */
    TN_ASSERT_RC(tn_unhex(out, 4, "00ab7fff00"), TN_EINVAL); /* long */
    TN_ASSERT_RC(tn_unhex(out, 4, "00ab7fg0"), TN_EINVAL);   /* not hex */
    TN_ASSERT_RC(tn_unhex(out, 4, "00ab7ff"), TN_EINVAL);    /* odd */
    TN_ASSERT_RC(tn_unhex(out, 2, " 0ab"), TN_EINVAL);
}

TN_TEST(common_strerror_names_every_code)
{
    for (int e = TN_OK; e >= TN_ELIMIT; e--) {
        const char *s = tn_strerror(e);
        TN_ASSERT(s != NULL);
        if (strcmp(s, "unknown error") == 0) TN_FAIL("code %d has no message", e);
        for (int f = TN_OK; f > e; f--)
            if (strcmp(s, tn_strerror(f)) == 0) TN_FAIL("codes %d and %d share \"%s\"", e, f, s);
    }
    TN_ASSERT_STR_EQ(tn_strerror(-999), "unknown error");
}

TN_TEST(common_clocks_advance)
{
    uint64_t m = tn_mono_ms(), w = tn_wall_ms();
    TN_ASSERT_U64(w, >, 1600000000000ull); /* after 2020: wall clock in ms since the epoch */
    TN_ASSERT_U64(tn_mono_ms(), >=, m);
}
