/* sd_notify(3) in a few lines (see tn_sdnotify.h): a fresh datagram socket per message,
 * which is cheap at the rate states change (the watchdog pings every few seconds). */
#include "tn_sdnotify.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int tn_sd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !path[0]) return TN_ENOTFOUND;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@')) return TN_EINVAL;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@') sa.sun_path[0] = 0; /* abstract namespace */
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return TN_EIO;
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    close(fd);
    return n == (ssize_t)strlen(state) ? TN_OK : TN_EIO;
}

uint64_t tn_sd_watchdog_usec(void)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    if (!usec || !usec[0]) return 0;
    if (pid && pid[0] && strtol(pid, NULL, 10) != (long)getpid()) return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(usec, &end, 10);
    if (errno || *end || v == 0) return 0;
    return (uint64_t)v;
}
