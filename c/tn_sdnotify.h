/* The systemd notification protocol without libsystemd: one datagram per state change to
 * the Unix socket named by $NOTIFY_SOCKET (READY=1, RELOADING=1, STOPPING=1, WATCHDOG=1,
 * STATUS=...). Without $NOTIFY_SOCKET (not run by systemd) every call does nothing. */
#ifndef TN_SDNOTIFY_H
#define TN_SDNOTIFY_H

#include "tn_common.h"

/* Sends state ("READY=1\nSTATUS=..."). TN_OK, TN_ENOTFOUND (no $NOTIFY_SOCKET) or TN_EIO. */
int tn_sd_notify(const char *state);
/* The watchdog interval systemd asks for ($WATCHDOG_USEC, for this pid when $WATCHDOG_PID
 * is set), in microseconds; 0 when there is no watchdog. */
uint64_t tn_sd_watchdog_usec(void);

#endif
