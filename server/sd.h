/* sd: the two systemd protocols wharfd speaks, written from their documentation:
 *
 * - notify: datagrams such as "READY=1" to the unix socket named by $NOTIFY_SOCKET
 *   (a path, or an abstract name when it starts with '@');
 * - socket activation: listening sockets inherited from fd 3 on, when $LISTEN_PID is
 *   our pid, counted by $LISTEN_FDS and named by $LISTEN_FDNAMES (colon-separated). */
#ifndef WHARF_SD_H
#define WHARF_SD_H

#include <stdint.h>

#include "listener.h"

/* Open the notify socket if $NOTIFY_SOCKET is set. 0 (also when unset) or -1 with a
 * reason in err. */
int sd_notify_open(char *err, size_t errlen);
int sd_notify_enabled(void);
/* Send one notification (several "KEY=VALUE" lines). Silent when not enabled. */
void sd_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sd_notify_close(void);

/* $WATCHDOG_USEC when it applies to this process ($WATCHDOG_PID unset or ours), else 0. */
uint64_t sd_watchdog_usec(void);

/* Inherited listeners: fills out[] (up to max) and returns how many; 0 when the
 * process was not socket-activated; -1 with a reason in err when the environment is
 * wrong (a count without sockets, an fd that is not a listening stream socket, a name
 * that is no listener scheme: see listen_spec.h). Clears the LISTEN_* variables so children do not inherit them. */
int sd_listen_fds(struct listener *out, int max, char *err, size_t errlen);

#endif
