#include "backend.h"

#include <stdio.h>

#include "../common/version.h"
#ifdef WHARF_URING
#include "uring.h"
#endif

const char *backend_list(void) { return WHARF_BACKENDS; }

const struct backend *backend_choose(enum backend_kind want, char *why, size_t whylen)
{
    if (whylen)
        why[0] = '\0';
    if (want == BACKEND_EPOLL)
        return &epoll_backend;
#ifdef WHARF_URING
    struct uring_caps caps;
    if (uring_probe(&caps, why, whylen) == 0)
        return uring_backend_for(&caps);
    return want == BACKEND_IO_URING ? NULL : &epoll_backend;
#else
    /* config.c refuses --backend io_uring in a build without it. */
    snprintf(why, whylen, "this wharfd was built without liburing");
    return want == BACKEND_IO_URING ? NULL : &epoll_backend;
#endif
}
