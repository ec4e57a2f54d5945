#include "filelimit.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "../common/fdtable.h"
#include "../common/log.h"

/* Descriptors that are not connections: epoll and eventfds per thread, listeners,
 * stdio, the EMFILE reserves, and some slack for logging and /proc reads. */
static uint64_t reserved_fds(const struct config *cfg)
{
    int listeners = cfg->n_listen * (cfg->dispatch == DISPATCH_REUSEPORT ? cfg->workers : 1);
    return 32 + 4 * (uint64_t)cfg->workers + (uint64_t)listeners;
}

/* Raise the soft file limit to the hard one; returns the connections it leaves room for. */
uint64_t filelimit_raise(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        log_warn("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
        rl.rlim_cur = rl.rlim_max = 1024;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            log_warn("cannot raise the file limit from %llu to %llu: %s", (unsigned long long)old,
                     (unsigned long long)rl.rlim_max, strerror(errno));
            rl.rlim_cur = old;
        }
    }
    uint64_t limit = rl.rlim_cur, reserve = reserved_fds(cfg);
    uint64_t capacity = limit > reserve ? limit - reserve : 1;
    /* The reserve is spelled out so the log, `wharf-tune check` (which computes the
     * same 32 + 4 per worker + listeners) and the unit's LimitNOFILE= tell one story. */
    log_info("file limit %llu: reserve %llu (32 + 4 per worker + listeners), room for %llu "
             "connections",
             (unsigned long long)limit, (unsigned long long)reserve, (unsigned long long)capacity);
    return capacity;
}

/* --max-conns auto means the capacity; more than the capacity is clamped. */
void filelimit_resolve_max_conns(struct settings *set, uint64_t capacity)
{
    if (set->max_conns == 0) {
        set->max_conns = capacity;
    } else if (set->max_conns > capacity) {
        log_warn("--max-conns %llu is more than the file limit allows; using %llu (raise "
                 "'ulimit -n')",
                 (unsigned long long)set->max_conns, (unsigned long long)capacity);
        set->max_conns = capacity;
    }
}

void filelimit_size_table(const struct config *cfg)
{
    size_t table = fdtable_reserve(cfg->set.max_conns + reserved_fds(cfg));
    log_debug("file descriptor table sized for %zu descriptors", table);
}

/* Since Linux 6.2 the size of /proc/self/fd is the number of descriptors open, read
 * from the table's bitmap: one stat, whatever the count. Before, it is 0, and the
 * directory is read (1.5 ms per 1,000 descriptors, measured here). */
int filelimit_usage(uint64_t *open_fds, uint64_t *limit)
{
    struct rlimit rl;
    struct stat st;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || stat("/proc/self/fd", &st) < 0)
        return -1;
    *limit = rl.rlim_cur;
    if (st.st_size > 0) {
        *open_fds = (uint64_t)st.st_size;
        return 0;
    }
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    uint64_t n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    *open_fds = n ? n - 1 : 0; /* not the directory's own descriptor */
    return 0;
}
