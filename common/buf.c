#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t next_cap(size_t need)
{
    size_t cap = 256;
    while (cap < need)
        cap *= 2;
    return cap;
}

int buf_reserve(struct buf *b, size_t n)
{
    if (buf_room(b) >= n)
        return 0;
    size_t len = buf_len(b);
    if (n > BUF_MAX_CAP - len)
        return -1;
    /* Sliding is cheaper than growing when the live bytes are few. */
    if (b->start > 0 && b->cap - len >= n) {
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = (uint32_t)len;
        return 0;
    }
    size_t cap = next_cap(len + n);
    if (cap > BUF_MAX_CAP)
        cap = BUF_MAX_CAP;
    char *p = malloc(cap);
    if (!p)
        return -1;
    if (len)
        memcpy(p, b->data + b->start, len);
    free(b->data);
    b->data = p;
    b->start = 0;
    b->end = (uint32_t)len;
    b->cap = (uint32_t)cap;
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->end, p, n);
    b->end += (uint32_t)n;
    return 0;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= buf_len(b)) {
        b->start = b->end = 0;
        return;
    }
    b->start += (uint32_t)n;
}

void buf_release(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}

void buf_trim(struct buf *b, size_t keep)
{
    if (buf_len(b) == 0 && b->cap > keep)
        buf_release(b);
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* No room may mean no memory yet: data + end would be NULL + 0. */
    int n = vsnprintf(buf_room(b) ? buf_tail(b) : NULL, buf_room(b), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= buf_room(b)) {
        if (buf_reserve(b, (size_t)n + 1) < 0)
            return -1;
        va_start(ap, fmt);
        vsnprintf(buf_tail(b), buf_room(b), fmt, ap);
        va_end(ap);
    }
    buf_commit(b, (size_t)n);
    return 0;
}
