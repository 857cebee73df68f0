/* Bounded buffers (tn_buf.h): the bound holds, consumed prefixes are dropped, take hands
 * the memory over. */
#include "tn_buf.h"
#include "tn_test.h"

#include <stdlib.h>

TN_TEST(buf_bound_enforced)
{
    tn_buf_t b;
    uint8_t data[300];
    for (int i = 0; i < 300; i++) data[i] = (uint8_t)i;
    tn_buf_init(&b, 300);
    TN_ASSERT_OK(tn_buf_append(&b, data, 200));
    TN_ASSERT_OK(tn_buf_append(&b, data + 200, 100)); /* exactly the bound */
    TN_ASSERT_U64(b.len, ==, 300);
    TN_ASSERT_U64(b.cap, <=, 300);
    TN_ASSERT_RC(tn_buf_append(&b, data, 1), TN_ENOMEM);
    TN_ASSERT_RC(tn_buf_reserve(&b, 1), TN_ENOMEM);
    TN_ASSERT_U64(b.len, ==, 300); /* a refused append leaves the contents alone */
    TN_ASSERT_MEM_EQ(b.p, data, 300);
    tn_buf_free(&b);

    /* A huge request cannot wrap size_t around the check. */
    tn_buf_init(&b, 1024);
    TN_ASSERT_OK(tn_buf_append(&b, data, 10));
    TN_ASSERT_RC(tn_buf_reserve(&b, SIZE_MAX - 4), TN_ENOMEM);
    TN_ASSERT_RC(tn_buf_reserve(&b, SIZE_MAX), TN_ENOMEM);
    tn_buf_free(&b);
}

TN_TEST(buf_small_bound_caps_allocation)
{
    tn_buf_t b;
    tn_buf_init(&b, 20);
    TN_ASSERT_OK(tn_buf_reserve(&b, 5));
    TN_ASSERT_U64(b.cap, <=, 20); /* the first allocation is not rounded up past max */
    TN_ASSERT_OK(tn_buf_append(&b, "01234567890123456789", 20));
    TN_ASSERT_RC(tn_buf_append(&b, "x", 1), TN_ENOMEM);
    tn_buf_free(&b);
}

TN_TEST(buf_compact)
{
    tn_buf_t b;
    tn_buf_init(&b, 1 << 20);
    TN_ASSERT_OK(tn_buf_append(&b, "abcdefghij", 10));
    b.off = 4;
    TN_ASSERT_U64(tn_buf_avail(&b), ==, 6);
    tn_buf_compact(&b);
    TN_ASSERT_U64(b.off, ==, 0);
    TN_ASSERT_U64(b.len, ==, 6);
    TN_ASSERT_MEM_EQ(b.p, "efghij", 6);
    tn_buf_compact(&b); /* nothing consumed: a no-op */
    TN_ASSERT_U64(b.len, ==, 6);
    /* Everything consumed: the memory is released, so idle peers cost nothing. */
    b.off = b.len;
    tn_buf_compact(&b);
    TN_ASSERT(b.p == NULL);
    TN_ASSERT_U64(b.cap, ==, 0);
    TN_ASSERT_U64(b.len, ==, 0);
    TN_ASSERT_U64(b.max, ==, 1 << 20); /* the bound survives */
    TN_ASSERT_OK(tn_buf_append(&b, "z", 1));
    TN_ASSERT_MEM_EQ(b.p, "z", 1);
    tn_buf_free(&b);
}

TN_TEST(buf_reserve_reuses_consumed_prefix)
{
    /* A full buffer whose front was consumed takes more bytes without passing its bound. */
    tn_buf_t b;
    tn_buf_init(&b, 16);
    TN_ASSERT_OK(tn_buf_append(&b, "0123456789abcdef", 16));
    b.off = 10;
    TN_ASSERT_OK(tn_buf_append(&b, "ghijklmnop", 10));
    TN_ASSERT_U64(b.off, ==, 0);
    TN_ASSERT_U64(b.len, ==, 16);
    TN_ASSERT_MEM_EQ(b.p, "abcdefghijklmnop", 16);
    TN_ASSERT_RC(tn_buf_append(&b, "q", 1), TN_ENOMEM);
    tn_buf_free(&b);
}

TN_TEST(buf_take)
{
    tn_buf_t b;
    tn_buf_init(&b, 4096);
    TN_ASSERT_OK(tn_buf_append(&b, "hello", 5));
    size_t len = 0;
    uint8_t *p = tn_buf_take(&b, &len);
    TN_ASSERT(p != NULL);
    TN_ASSERT_U64(len, ==, 5);
    TN_ASSERT_MEM_EQ(p, "hello", 5);
    TN_ASSERT(b.p == NULL);
    TN_ASSERT_U64(b.len + b.off + b.cap, ==, 0);
    /* The emptied buffer is usable again and independent of the taken memory. */
    TN_ASSERT_OK(tn_buf_append(&b, "world", 5));
    TN_ASSERT(b.p != p);
    TN_ASSERT_MEM_EQ(p, "hello", 5);
    free(p);
    tn_buf_free(&b);

    tn_buf_init(&b, 16); /* taking an empty buffer gives NULL and 0 */
    p = tn_buf_take(&b, &len);
    TN_ASSERT(p == NULL);
    TN_ASSERT_U64(len, ==, 0);
}

TN_TEST(buf_grows_keeping_contents)
{
    tn_buf_t b;
    tn_buf_init(&b, 1 << 20);
    for (int i = 0; i < 10000; i++) {
        uint8_t c = (uint8_t)(i * 7);
        TN_ASSERT_OK(tn_buf_append(&b, &c, 1));
    }
    for (int i = 0; i < 10000; i++) TN_ASSERT_INT(b.p[i], ==, (uint8_t)(i * 7));
    TN_ASSERT_OK(tn_buf_append(&b, NULL, 0));
    TN_ASSERT_U64(b.len, ==, 10000);
    tn_buf_free(&b);
    tn_buf_free(&b); /* freeing twice is safe */
}
