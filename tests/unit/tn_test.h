/* A tiny unit test framework in the style of libuv's test runner: every TN_TEST registers
 * itself in one registry (tests/unit/runner.c), and `unit-tests` runs each test in its own
 * child process so a crash, a hang or a leak in one test cannot hide another.
 *
 *   TN_TEST(buf_take) { ...; TN_ASSERT_INT(n, ==, 3); }
 *
 * A failed assertion ends the test at once with "file:line: what failed (values)". */
#ifndef TN_TEST_H
#define TN_TEST_H

#include "tn_common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct tn_test {
    const char *name;
    void (*fn)(void);
    const char *file;
    int line;
    struct tn_test *next;
} tn_test_t;

void tn_test_register(tn_test_t *t);
/* Ends the running test as failed; the reason becomes the rest of the "not ok" line. */
_Noreturn void tn_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Test names must be unique C identifiers: a duplicate is a link error. */
#define TN_TEST(name)                                                                              \
    void tn_test_fn_##name(void);                                                                  \
    static tn_test_t tn_test_rec_##name = {#name, tn_test_fn_##name, __FILE__, __LINE__, NULL};    \
    __attribute__((constructor)) static void tn_test_reg_##name(void)                              \
    {                                                                                              \
        tn_test_register(&tn_test_rec_##name);                                                     \
    }                                                                                              \
    void tn_test_fn_##name(void)

#define TN_FAIL(...) tn_test_fail(__FILE__, __LINE__, __VA_ARGS__)

#define TN_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) TN_FAIL("assertion failed: %s", #cond);                                       \
    } while (0)

/* Integer comparison, op is a C operator: TN_ASSERT_INT(rc, ==, 0). Signed 64-bit. */
#define TN_ASSERT_INT(a, op, b)                                                                    \
    do {                                                                                           \
        long long tn_a_ = (long long)(a), tn_b_ = (long long)(b);                                  \
        if (!(tn_a_ op tn_b_))                                                                     \
            TN_FAIL("%s %s %s failed: %lld %s %lld", #a, #op, #b, tn_a_, #op, tn_b_);              \
    } while (0)

/* Unsigned 64-bit comparison. */
#define TN_ASSERT_U64(a, op, b)                                                                    \
    do {                                                                                           \
        unsigned long long tn_a_ = (unsigned long long)(a), tn_b_ = (unsigned long long)(b);       \
        if (!(tn_a_ op tn_b_))                                                                     \
            TN_FAIL("%s %s %s failed: %llu (0x%llx) %s %llu (0x%llx)", #a, #op, #b, tn_a_, tn_a_,  \
                    #op, tn_b_, tn_b_);                                                            \
    } while (0)

#define TN_ASSERT_DBL(a, op, b)                                                                    \
    do {                                                                                           \
        double tn_a_ = (double)(a), tn_b_ = (double)(b);                                           \
        if (!(tn_a_ op tn_b_))                                                                     \
            TN_FAIL("%s %s %s failed: %.17g %s %.17g", #a, #op, #b, tn_a_, #op, tn_b_);            \
    } while (0)

#define TN_ASSERT_PTR_EQ(a, b)                                                                     \
    do {                                                                                           \
        const void *tn_a_ = (a), *tn_b_ = (b);                                                     \
        if (tn_a_ != tn_b_) TN_FAIL("%s == %s failed: %p vs %p", #a, #b, tn_a_, tn_b_);            \
    } while (0)

/* A core return code (0 or TN_E*), printed with tn_strerror. */
#define TN_ASSERT_RC(expr, want)                                                                   \
    do {                                                                                           \
        int tn_rc_ = (int)(expr), tn_want_ = (int)(want);                                          \
        if (tn_rc_ != tn_want_)                                                                    \
            TN_FAIL("%s returned %d (%s), expected %d (%s)", #expr, tn_rc_, tn_strerror(tn_rc_),   \
                    tn_want_, tn_strerror(tn_want_));                                              \
    } while (0)
#define TN_ASSERT_OK(expr) TN_ASSERT_RC(expr, TN_OK)

#define TN_ASSERT_STR_EQ(a, b)                                                                     \
    do {                                                                                           \
        const char *tn_a_ = (a), *tn_b_ = (b);                                                     \
        if (!tn_a_ || !tn_b_ || strcmp(tn_a_, tn_b_) != 0)                                         \
            TN_FAIL("%s == %s failed: \"%s\" vs \"%s\"", #a, #b, tn_a_ ? tn_a_ : "(null)",         \
                    tn_b_ ? tn_b_ : "(null)");                                                     \
    } while (0)

/* s contains sub. */
#define TN_ASSERT_STR_HAS(s, sub)                                                                  \
    do {                                                                                           \
        const char *tn_a_ = (s), *tn_b_ = (sub);                                                   \
        if (!tn_a_ || !strstr(tn_a_, tn_b_))                                                       \
            TN_FAIL("%s does not contain \"%s\": \"%s\"", #s, tn_b_, tn_a_ ? tn_a_ : "(null)");    \
    } while (0)

/* s starts with prefix. */
#define TN_ASSERT_STR_PREFIX(s, prefix)                                                            \
    do {                                                                                           \
        const char *tn_a_ = (s), *tn_b_ = (prefix);                                                \
        if (!tn_a_ || strncmp(tn_a_, tn_b_, strlen(tn_b_)) != 0)                                   \
            TN_FAIL("%s does not start with \"%s\": \"%s\"", #s, tn_b_, tn_a_ ? tn_a_ : "(null)"); \
    } while (0)

void tn_test_assert_mem(const char *file, int line, const char *what, const void *a, const void *b,
                        size_t n);
/* n bytes at a equal n bytes at b; the failure shows both in hex from the first difference. */
#define TN_ASSERT_MEM_EQ(a, b, n) tn_test_assert_mem(__FILE__, __LINE__, #a " == " #b, a, b, n)

void tn_test_assert_hex(const char *file, int line, const char *what, const void *p, size_t n,
                        const char *hex);
/* n bytes at p equal the lower-case hex string. */
#define TN_ASSERT_HEX(p, n, hex) tn_test_assert_hex(__FILE__, __LINE__, #p, p, n, hex)

/* ---- helpers ---- */

/* Writes text to a new temporary file (removed when the test process exits) and returns
 * its path; suffix such as ".lua" may be NULL. */
const char *tn_test_tmpfile(const char *text, const char *suffix);
/* Whole contents of a file, NUL-terminated (caller frees); NULL if it cannot be read. */
char *tn_test_read_file(const char *path, size_t *len);
/* Number of lines (newline-terminated) in s. */
int tn_test_count_lines(const char *s);

#endif
