/* buf: a growable byte buffer with a read offset and a write offset.
 *
 * Bytes live in data[start, end). Consumers advance start; producers append at end.
 * Before the buffer grows it slides its contents to the front, so a buffer that is
 * drained as fast as it fills never grows. A buffer that becomes empty can give its
 * memory back (buf_release) so idle connections cost nothing. */
#ifndef WHARF_BUF_H
#define WHARF_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
    char *data;
    uint32_t start;
    uint32_t end;
    uint32_t cap;
};

/* Largest size a buffer may reach; callers enforce smaller protocol limits first. */
#define BUF_MAX_CAP (1u << 31)

static inline size_t buf_len(const struct buf *b) { return b->end - b->start; }
/* (An unallocated buffer has data == NULL: no offset is added to it, not even 0.) */
static inline char *buf_head(const struct buf *b) { return b->start ? b->data + b->start : b->data; }
static inline char *buf_tail(const struct buf *b) { return b->end ? b->data + b->end : b->data; }
static inline size_t buf_room(const struct buf *b) { return b->cap - b->end; }

/* Make room for at least n more bytes after end. Returns 0, or -1 when out of memory
 * or when the result would exceed BUF_MAX_CAP (the buffer is then unchanged). */
int buf_reserve(struct buf *b, size_t n);

/* Append n bytes (buf_reserve + copy). Returns 0 or -1. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Mark n bytes written at the tail (after writing into buf_tail()). */
static inline void buf_commit(struct buf *b, size_t n) { b->end += (uint32_t)n; }

/* Drop n bytes from the head. An emptied buffer rewinds to offset 0. */
void buf_consume(struct buf *b, size_t n);

/* Empty the buffer, keeping its memory. */
static inline void buf_clear(struct buf *b) { b->start = b->end = 0; }

/* Free the memory and reset to the zero state. */
void buf_release(struct buf *b);

/* Free the memory if the buffer is empty, or shrink it if it holds more than
 * keep bytes of capacity and is empty. Used when a connection goes idle. */
void buf_trim(struct buf *b, size_t keep);

/* Append printf-formatted text. Returns 0 or -1. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
