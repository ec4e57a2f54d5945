#include "fdtable.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

size_t fdtable_reserve(size_t n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    if (rl.rlim_cur != RLIM_INFINITY && n > rl.rlim_cur)
        n = (size_t)rl.rlim_cur;
    if (n > FDTABLE_RESERVE_MAX)
        n = FDTABLE_RESERVE_MAX;
    if (n < 2)
        return 0;
    /* Duplicating a descriptor to number n-1 makes the kernel size the table for it;
     * closing the duplicate leaves the table that size. Any open descriptor will do:
     * open one rather than trust that 0, 1 or 2 are open (systemd may close them). */
    int base = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (base < 0)
        return 0;
    int high = fcntl(base, F_DUPFD_CLOEXEC, (int)(n - 1));
    close(base);
    if (high < 0)
        return 0;
    close(high);
    return n;
}
