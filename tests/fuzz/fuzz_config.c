/* Fuzz target `config`: tn_config_load on an arbitrary file (the input, written to a memfd
 * and loaded through /proc/self/fd/N as the loader takes a path). A config that loads must
 * print (tn_config_print, `timenetd --print-config`) to a file that loads again and prints
 * the same text: what the node accepts it can also write back. */
#define _GNU_SOURCE
#include "fz_common.h"
#include "tn_config.h"

#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A memfd holding p[0..n) and its path; -1 on failure. */
static int memfile(const void *p, size_t n, char path[64])
{
    int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
    if (fd < 0) return -1;
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, (const char *)p + off, n - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    snprintf(path, 64, "/proc/self/fd/%d", fd);
    return fd;
}

static char *print(const tn_config_t *c, size_t *len)
{
    char *text = NULL;
    FILE *m = open_memstream(&text, len);
    if (!m) abort();
    tn_config_print(c, m);
    fclose(m);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 16)) return 0;
    char path[64], err[1024];
    int fd = memfile(data, size, path);
    if (fd < 0) return 0;
    tn_config_t c;
    if (tn_config_defaults(&c) != TN_OK) abort();
    int rc = tn_config_load(&c, path, err, sizeof err);
    close(fd);
    FZ_CHECK(rc == TN_OK || rc == TN_EINVAL || rc == TN_ENOMEM, "rc %d", rc);
    if (rc != TN_OK) FZ_CHECK(err[0] != 0, "an error without a message");
    if (rc == TN_OK) {
        size_t l1, l2;
        char *t1 = print(&c, &l1);
        tn_config_t c2;
        if (tn_config_defaults(&c2) != TN_OK) abort();
        fd = memfile(t1, l1, path);
        if (fd >= 0) {
            rc = tn_config_load(&c2, path, err, sizeof err);
            close(fd);
            FZ_CHECK(rc == TN_OK, "the printed config does not load: %s", err);
            char *t2 = print(&c2, &l2);
            FZ_CHECK(l1 == l2 && memcmp(t1, t2, l1) == 0, "printed config changes when reloaded");
            free(t2);
        }
        tn_config_free(&c2);
        free(t1);
    }
    tn_config_free(&c);
    return 0;
}
