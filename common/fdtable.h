#ifndef WHARF_FDTABLE_H
#define WHARF_FDTABLE_H

#include <stddef.h>

/* Grow the process's file descriptor table to hold descriptors below n (at most the
 * soft RLIMIT_NOFILE and FDTABLE_RESERVE_MAX), while the process has one thread.
 *
 * Why: the kernel doubles the table when a new descriptor does not fit, and in a
 * multi-threaded process each doubling waits for an RCU grace period inside the
 * accept4()/socket()/connect() that needed it. Measured here: one accept4() that
 * returned fd 256 took 8.6 ms, stalling every connection of that worker. Grown
 * before the threads start, the doublings cost nothing. The table costs the kernel
 * about 8.25 bytes per slot and never shrinks, so the reserve stops at 65,536 slots
 * (512 KiB): under systemd the hard limit, and with it --max-conns auto, is 524,288,
 * and a process that really grows past 65,536 connections pays three stalls once.
 *
 * Returns the table size now guaranteed (0 when nothing was done). */
#define FDTABLE_RESERVE_MAX ((size_t)1 << 16)
size_t fdtable_reserve(size_t n);

#endif
