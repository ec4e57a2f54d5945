/* guard: place test input so that its last byte is the last readable byte before a
 * PROT_NONE page (as picohttpparser's tests do). A decoder that reads even one byte past
 * the length it was given then faults, with or without a sanitizer.
 *
 *     struct guard g;
 *     assert_int_equal(guard_open(&g, 16384), 0);
 *     const char *p = guard_place(&g, input, len);   // p[len] is unmapped
 *     ...
 *     guard_close(&g);
 */
#ifndef WHARF_TEST_GUARD_H
#define WHARF_TEST_GUARD_H

#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct guard {
    char *base;     /* first usable byte */
    size_t usable;  /* bytes before the guard page */
    size_t map_len; /* usable + one guard page */
};

/* Map at least capacity usable bytes followed by one inaccessible page. 0 or -1. */
static inline int guard_open(struct guard *g, size_t capacity)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t usable = (capacity + page - 1) / page * page;
    if (usable == 0)
        usable = page;
    void *m = mmap(NULL, usable + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (m == MAP_FAILED)
        return -1;
    if (mprotect((char *)m + usable, page, PROT_NONE) != 0) {
        munmap(m, usable + page);
        return -1;
    }
    g->base = m;
    g->usable = usable;
    g->map_len = usable + page;
    return 0;
}

/* Copy len bytes so that they end right at the guard page; returns where they start
 * (NULL when they do not fit). With len 0 the result points at the guard itself. */
static inline char *guard_place(struct guard *g, const void *data, size_t len)
{
    if (len > g->usable)
        return NULL;
    char *dst = g->base + g->usable - len;
    if (len)
        memmove(dst, data, len);
    return dst;
}

static inline void guard_close(struct guard *g)
{
    if (g->base)
        munmap(g->base, g->map_len);
    g->base = NULL;
}

/* Does touching the byte right after placed input really fault? Checked in a child
 * process, so the helper itself is shown able to catch an over-read. 1 when it faults. */
static inline int guard_faults_past_end(struct guard *g)
{
    pid_t pid = fork();
    if (pid < 0)
        return 0;
    if (pid == 0) {
        /* The test framework's SIGSEGV handler would catch the fault and carry on
         * running tests in the child: die of the signal instead. */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        volatile const char *p = guard_place(g, "x", 1);
        volatile char c = p[1];
        (void)c;
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return 0;
    return WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
}

#endif
