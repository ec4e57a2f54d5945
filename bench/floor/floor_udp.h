/* floor_udp: `floor udp PORT [ADDR]` (floor_udp.c). */
#ifndef WHARF_FLOOR_UDP_H
#define WHARF_FLOOR_UDP_H

/* Serve udp on addr:port until killed. Returns only on a fatal error (1). */
int floor_udp(const char *addr, int port);

#endif
