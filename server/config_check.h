/* config_check: what only the host can tell about a configuration, for wharfd -t: that
 * each listener's address exists here and that --user names an account. Nothing is
 * started and no configured port is touched (a running server holds them). */
#ifndef WHARF_CONFIG_CHECK_H
#define WHARF_CONFIG_CHECK_H

#include <stddef.h>

#include "listen_spec.h"

/* 0 when l's address is one this host can listen on (a wildcard always is), or -1 with
 * a one-line reason in err that quotes the listener. The address is asked of the kernel
 * by binding a throwaway socket to it on port 0 (a port the kernel picks, closed at
 * once): the kernel's own answer covers 127.0.0.0/8, ip_nonlocal_bind and addresses
 * still being configured, and it needs no netlink socket, which the unit's sandbox
 * (RestrictAddressFamilies=) forbids to ExecReload's check. */
int config_check_listener(const struct listen_spec *l, char *err, size_t errlen);

/* 1 when a and b cannot both be bound: the same port (not 0) and family, and the same
 * address or a wildcard on either side; else 0. */
int config_check_clash(const struct listen_spec *a, const struct listen_spec *b);

/* 0 when user names an account on this host, or -1 with a one-line reason in err. */
int config_check_user(const char *user, char *err, size_t errlen);

#endif
