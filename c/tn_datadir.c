/* Data directory, lock and node key (see tn_datadir.h). */
#define _GNU_SOURCE
#include "tn_datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE "node.key"
#define LOCK_FILE "LOCK"

static int mkdir_p(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int rc = mkdir(path, 0700);
        *p = '/';
        if (rc != 0 && errno != EEXIST) return -1;
    }
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int tn_datadir_path(const tn_datadir_t *d, const char *name, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s", d->dir, name);
    return n < 0 || (size_t)n >= outlen ? TN_ETOOBIG : TN_OK;
}

int tn_datadir_open(tn_datadir_t *d, const char *dir, char *err, size_t errlen)
{
    d->lock_fd = -1;
    if (snprintf(d->dir, sizeof d->dir, "%s", dir) >= (int)sizeof d->dir) {
        snprintf(err, errlen, "data_dir path is too long");
        return TN_ETOOBIG;
    }
    if (mkdir_p(d->dir) != 0) {
        snprintf(err, errlen, "cannot create data_dir %s: %s", dir, strerror(errno));
        return TN_EIO;
    }
    char path[TN_PATH_MAX + 16];
    tn_datadir_path(d, LOCK_FILE, path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return TN_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "data_dir %s is in use by another timenetd (lock %s held)", dir,
                 path);
        close(fd);
        return TN_EALREADY;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && write(fd, pid, (size_t)n) != n) { /* informative only */
    }
    d->lock_fd = fd;
    return TN_OK;
}

void tn_datadir_close(tn_datadir_t *d)
{
    if (d->lock_fd >= 0) close(d->lock_fd); /* releases the lock */
    d->lock_fd = -1;
}

int tn_identity_load(const tn_datadir_t *d, uint8_t sk[TN_ID_SK_LEN], int *created, char *err,
                     size_t errlen)
{
    char path[TN_PATH_MAX + 16], hex[2 * TN_ID_SK_LEN + 2];
    tn_datadir_path(d, KEY_FILE, path, sizeof path);
    *created = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        uint8_t pk[TN_ID_LEN];
        crypto_sign_keypair(pk, sk);
        tn_hex(hex, sk, TN_ID_SK_LEN);
        hex[2 * TN_ID_SK_LEN] = '\n';
        char tmp[TN_PATH_MAX + 32];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int ok = fd >= 0 && write(fd, hex, 2 * TN_ID_SK_LEN + 1) == 2 * TN_ID_SK_LEN + 1 &&
                 fsync(fd) == 0;
        if (fd >= 0) close(fd);
        /* rename after fsync: a crash leaves either no key or a whole key, never half */
        if (!ok || rename(tmp, path) != 0) {
            snprintf(err, errlen, "cannot write node key %s: %s", path, strerror(errno));
            unlink(tmp);
            sodium_memzero(hex, sizeof hex);
            return TN_EIO;
        }
        sodium_memzero(hex, sizeof hex);
        *created = 1;
        return TN_OK;
    }
    if (fd < 0) {
        snprintf(err, errlen, "cannot read node key %s: %s", path, strerror(errno));
        return TN_EIO;
    }
    struct stat stt;
    if (fstat(fd, &stt) == 0 && (stt.st_mode & 077)) {
        snprintf(err, errlen, "node key %s is readable by others (mode %03o); chmod 600 it", path,
                 stt.st_mode & 0777);
        close(fd);
        return TN_EINVAL;
    }
    ssize_t n = read(fd, hex, sizeof hex - 1);
    close(fd);
    if (n < 2 * TN_ID_SK_LEN) {
        snprintf(err, errlen, "node key %s is truncated", path);
        return TN_EINVAL;
    }
    hex[2 * TN_ID_SK_LEN] = 0;
    int rc = tn_unhex(sk, TN_ID_SK_LEN, hex);
    sodium_memzero(hex, sizeof hex);
    uint8_t pk[TN_ID_LEN], seed_pk[TN_ID_LEN];
    if (rc == TN_OK) {
        crypto_sign_ed25519_sk_to_pk(pk, sk);
        uint8_t tmp_sk[TN_ID_SK_LEN];
        crypto_sign_seed_keypair(seed_pk, tmp_sk, sk); /* seed is the first 32 bytes */
        sodium_memzero(tmp_sk, sizeof tmp_sk);
    }
    if (rc != TN_OK || memcmp(pk, seed_pk, TN_ID_LEN) != 0) {
        snprintf(err, errlen, "node key %s is not a valid key", path);
        return TN_EINVAL;
    }
    return TN_OK;
}
