#include "handoff.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

int handoff_init(struct handoff *h)
{
    *h = (struct handoff){0};
    if (pthread_mutex_init(&h->lock, NULL) != 0)
        return -1;
    h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->efd < 0) {
        pthread_mutex_destroy(&h->lock);
        return -1;
    }
    return 0;
}

void handoff_destroy(struct handoff *h)
{
    for (size_t i = 0; i < h->n; i++)
        close(h->items[i].fd);
    free(h->items);
    close(h->efd);
    pthread_mutex_destroy(&h->lock);
}

void handoff_wake(struct handoff *h)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already huge, so the worker is awake anyway. */
    while (write(h->efd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

int handoff_push(struct handoff *h, const struct handoff_item *items, size_t n)
{
    pthread_mutex_lock(&h->lock);
    if (h->n + n > h->cap) {
        size_t cap = h->cap ? h->cap : 64;
        while (cap < h->n + n)
            cap *= 2;
        struct handoff_item *p = realloc(h->items, cap * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&h->lock);
            return -1;
        }
        h->items = p;
        h->cap = cap;
    }
    int was_empty = h->n == 0;
    for (size_t i = 0; i < n; i++)
        h->items[h->n + i] = items[i];
    h->n += n;
    pthread_mutex_unlock(&h->lock);
    if (was_empty)
        handoff_wake(h);
    return 0;
}

size_t handoff_take(struct handoff *h, struct handoff_item **items)
{
    pthread_mutex_lock(&h->lock);
    *items = h->items;
    size_t n = h->n;
    h->items = NULL;
    h->n = h->cap = 0;
    pthread_mutex_unlock(&h->lock);
    return n;
}

size_t handoff_depth(struct handoff *h)
{
    pthread_mutex_lock(&h->lock);
    size_t n = h->n;
    pthread_mutex_unlock(&h->lock);
    return n;
}

void handoff_close(struct handoff *h)
{
    pthread_mutex_lock(&h->lock);
    h->closed = 1;
    pthread_mutex_unlock(&h->lock);
    handoff_wake(h);
}

int handoff_closed(struct handoff *h)
{
    pthread_mutex_lock(&h->lock);
    int closed = h->closed;
    pthread_mutex_unlock(&h->lock);
    return closed;
}

void handoff_push_settings(struct handoff *h, const struct settings *s)
{
    pthread_mutex_lock(&h->lock);
    h->settings = *s;
    h->settings_pending = 1;
    pthread_mutex_unlock(&h->lock);
    handoff_wake(h);
}

int handoff_take_settings(struct handoff *h, struct settings *out)
{
    pthread_mutex_lock(&h->lock);
    int pending = h->settings_pending;
    if (pending)
        *out = h->settings;
    h->settings_pending = 0;
    pthread_mutex_unlock(&h->lock);
    return pending;
}
