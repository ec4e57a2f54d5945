#include "fake_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../server/option_table.h"
#include "../../server/peer.h"

#define FAKE_LINGER_MS 2000
#define RBUF_SIZE (64 * 1024)

static char rbuf[RBUF_SIZE]; /* read scratch, as the epoll backend has one per worker */

static struct fake_worker *fw_of(struct worker *w) { return (struct fake_worker *)w; }

static void record(struct fake_worker *fw, enum fake_hook h)
{
    static const char *const names[FAKE_HOOKS] = {"attach", "detach", "send", "read_on",
                                                  "read_off", "linger", "revisit", "release"};
    fw->calls[h]++;
    size_t used = strlen(fw->trace);
    snprintf(fw->trace + used, sizeof fw->trace - used, "%s ", names[h]);
}

/* The next scripted result (FAKE_AGAIN once the script is used up). */
static struct fake_io *next_step(struct fake_io *script, int n, int *next)
{
    static struct fake_io again = {.kind = FAKE_AGAIN};
    return *next < n ? &script[(*next)++] : &again;
}

/* ---- the hooks ---- */

static int fake_init(struct worker *w) { (void)w; return 0; }
static void fake_run(struct worker *w) { (void)w; }
static void fake_fini(struct worker *w) { (void)w; }

static int fake_attach(struct worker *w, struct conn *c)
{
    struct fake_worker *fw = fw_of(w);
    record(fw, FAKE_ATTACH);
    if (fw->attach_fails) {
        fw->attach_fails = 0;
        return -1;
    }
    fw->conn = c;
    return 0;
}

static void fake_detach(struct worker *w, struct conn *c)
{
    struct fake_worker *fw = fw_of(w);
    record(fw, FAKE_DETACH);
    close(c->fd);
    buf_clear(&fw->scratch);
    fw->conn = NULL;
}

/* Write b as the script says, like the epoll backend's flush: whatever the "socket"
 * does not take of the scratch buffer moves into c->out. */
static void fake_flush(struct fake_worker *fw, struct conn *c, struct buf *b)
{
    struct worker *w = (struct worker *)fw;
    while (buf_len(b)) {
        size_t len = buf_len(b), n = len;
        struct fake_io *s = fw->next_write < fw->n_writes ? &fw->writes[fw->next_write++] : NULL;
        if (s && s->kind == FAKE_ERROR) {
            conn_fail(w, c, s->err);
            return;
        }
        if (s && s->kind != FAKE_BYTES)
            break; /* EAGAIN */
        if (s)
            n = s->len < len ? s->len : len;
        else if (fw->write_max)
            n = fw->write_max < len ? fw->write_max : len;
        if (buf_append(&fw->seen, buf_head(b), n) < 0) {
            conn_nomem(w, c);
            return;
        }
        conn_sent(w, c, n);
        buf_consume(b, n);
        if (n < len)
            break; /* the socket is full: a writable event will say when it has room */
    }
    if (b == &fw->scratch) {
        if (buf_len(b) && buf_append(&c->out, buf_head(b), buf_len(b)) < 0) {
            conn_nomem(w, c);
            return;
        }
        buf_clear(b);
    }
    if (!buf_len(&c->out))
        buf_release(&c->out);
}

static void fake_send(struct worker *w, struct conn *c)
{
    struct fake_worker *fw = fw_of(w);
    record(fw, FAKE_SEND);
    if (buf_len(&fw->scratch))
        fake_flush(fw, c, &fw->scratch);
    else if (!fw->loop.reply_scratch && buf_len(&c->out))
        fake_flush(fw, c, &c->out);
}

static void fake_read_on(struct worker *w, struct conn *c)
{
    (void)c;
    record(fw_of(w), FAKE_READ_ON);
}

static void fake_read_off(struct worker *w, struct conn *c)
{
    (void)c;
    record(fw_of(w), FAKE_READ_OFF);
}

static void fake_linger(struct worker *w, struct conn *c)
{
    (void)c;
    record(fw_of(w), FAKE_LINGER);
}

/* Read as the script says until EAGAIN or conn.c stops reading. */
static void fake_read(struct fake_worker *fw, struct conn *c)
{
    struct worker *w = (struct worker *)fw;
    while (conn_reading(c)) {
        struct fake_io *s = next_step(fw->reads, fw->n_reads, &fw->next_read);
        if (s->kind == FAKE_AGAIN)
            return;
        if (s->kind == FAKE_EOF) {
            conn_peer_eof(w, c);
            return;
        }
        if (s->kind == FAKE_ERROR) {
            conn_fail(w, c, s->err);
            return;
        }
        size_t room;
        char *dst = conn_direct_read(c, &room);
        if (!dst) {
            dst = rbuf;
            room = RBUF_SIZE;
        }
        size_t n = s->len < room ? s->len : room;
        memcpy(dst, s->data, n);
        if (n < s->len) { /* the rest comes with the next read */
            s->data += n;
            s->len -= n;
            fw->next_read--;
        }
        if (!conn_received(w, c, dst, n))
            return;
    }
}

/* Lingering: input is discarded until the peer's EOF. */
static void fake_read_lingering(struct fake_worker *fw, struct conn *c)
{
    for (;;) {
        struct fake_io *s = next_step(fw->reads, fw->n_reads, &fw->next_read);
        if (s->kind == FAKE_AGAIN)
            return;
        if (s->kind != FAKE_BYTES) {
            conn_close((struct worker *)fw, c);
            return;
        }
    }
}

static void fake_revisit(struct worker *w, struct conn *c)
{
    record(fw_of(w), FAKE_REVISIT);
    if (c->flags & (CONN_CLOSED | CONN_LINGER))
        return;
    fake_read(fw_of(w), c);
    conn_settle(w, c);
}

static void fake_release(struct conn *c)
{
    (void)c; /* no fake_worker here: counted by fake_free_closed instead */
}

const struct backend fake_backend = {
    .name = "fake",
    .conn_private = 0,
    .init = fake_init,
    .run = fake_run,
    .fini = fake_fini,
    .attach = fake_attach,
    .detach = fake_detach,
    .send = fake_send,
    .read_on = fake_read_on,
    .read_off = fake_read_off,
    .linger = fake_linger,
    .revisit = fake_revisit,
    .conn_release = fake_release,
};

/* ---- the loop's side ---- */

/* The end of a loop turn: free what was closed (worker.c's free_closed). */
static void fake_free_closed(struct fake_worker *fw)
{
    struct conn *c = fw->loop.closed;
    fw->loop.closed = NULL;
    while (c) {
        struct conn *next = (struct conn *)c->timer.next;
        record(fw, FAKE_RELEASE);
        conn_free((struct worker *)fw, c);
        c = next;
    }
}

static void fake_settle(struct fake_worker *fw, struct conn *c)
{
    conn_settle((struct worker *)fw, c);
    fake_free_closed(fw);
}

/* An EAGAIN in the read script ends one readable event: when conn.c stopped reading
 * just before it, it still belongs to this event. */
static void fake_end_of_event_reads(struct fake_worker *fw)
{
    if (fw->next_read < fw->n_reads && fw->reads[fw->next_read].kind == FAKE_AGAIN)
        fw->next_read++;
}

void fake_readable(struct fake_worker *fw)
{
    struct conn *c = fw->conn;
    if (!c)
        return;
    if (c->flags & CONN_LINGER) {
        fake_read_lingering(fw, c);
        fake_free_closed(fw);
    } else {
        fake_read(fw, c);
        fake_settle(fw, c);
    }
    fake_end_of_event_reads(fw);
}

void fake_writable(struct fake_worker *fw)
{
    struct conn *c = fw->conn;
    if (!c)
        return;
    if (buf_len(&c->out))
        fake_flush(fw, c, &c->out);
    fake_settle(fw, c);
}

void fake_advance(struct fake_worker *fw, uint32_t ms)
{
    struct worker *w = (struct worker *)fw;
    fw->loop.now += ms;
    for (int l = 0; l < TIMER_LISTS; l++) {
        struct tlist *list = &fw->loop.timers[l];
        if (!list->timeout_ms)
            continue;
        while (list->head && timer_expired(list->head->deadline, fw->loop.now))
            conn_on_timeout(w, conn_of_timer(list->head));
    }
    fake_free_closed(fw);
}

/* ---- set-up ---- */

static void fake_close_current(struct fake_worker *fw)
{
    if (fw->conn)
        conn_close((struct worker *)fw, fw->conn);
    fake_free_closed(fw);
    if (fw->client_fd >= 0)
        close(fw->client_fd);
    fw->client_fd = -1;
}

void fake_open(struct fake_worker *fw, int proto)
{
    fake_close_current(fw);
    struct tlist *t = fw->loop.timers;
    t[TIMER_IDLE] = (struct tlist){.timeout_ms = (uint32_t)fw->set.idle_timeout_ms, .id = TIMER_IDLE};
    t[TIMER_HEADER] = (struct tlist){.timeout_ms = (uint32_t)fw->set.header_timeout_ms,
                                     .id = TIMER_HEADER};
    t[TIMER_LINGER] = (struct tlist){.timeout_ms = FAKE_LINGER_MS, .id = TIMER_LINGER};
    fw->env = (struct handler_env){.settings = &fw->set, .mode = fw->set.mode,
                                   .max_message = fw->set.max_message, .http = &fw->http,
                                   .stats = &fw->stats, .registry = &fw->registry};
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("socketpair");
        return;
    }
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    fw->client_fd = sv[1];
    counter_add(&fw->stats.accepted, 1);
    conn_open((struct worker *)fw, sv[0], (uint8_t)proto, PEER_NONE);
}

void fake_worker_init(struct fake_worker *fw)
{
    memset(fw, 0, sizeof *fw);
    options_apply_defaults(&fw->cfg);
    fw->cfg.workers = 1;
    fw->registry = (struct stats_registry){.cfg = &fw->cfg, .n_workers = 1, .backend = "fake"};
    fw->registry.workers[0] = &fw->stats;
    fw->set = fw->cfg.set;
    fw->set.mode = MODE_ECHO;
    fw->set.idle_timeout_ms = 0;
    fw->set.header_timeout_ms = 0;
    fw->client_fd = -1;
    http_cache_refresh(&fw->http, time(NULL));
    fw->loop.io = &fake_backend;
    fw->loop.reply_scratch = &fw->scratch;
    fw->loop.stats = &fw->stats;
    fw->loop.env = &fw->env;
    fw->loop.set = &fw->set;
}

void fake_no_scratch(struct fake_worker *fw) { fw->loop.reply_scratch = NULL; }

void fake_worker_fini(struct fake_worker *fw)
{
    fake_close_current(fw);
    buf_release(&fw->scratch);
    buf_release(&fw->seen);
}

/* ---- scripts ---- */

static void add(struct fake_io *script, int *n, struct fake_io step)
{
    if (*n == FAKE_SCRIPT_MAX) {
        fprintf(stderr, "fake_backend: script longer than %d steps\n", FAKE_SCRIPT_MAX);
        return;
    }
    script[(*n)++] = step;
}

void fake_read_data(struct fake_worker *fw, const void *data, size_t len)
{
    add(fw->reads, &fw->n_reads, (struct fake_io){.kind = FAKE_BYTES, .data = data, .len = len});
}
void fake_read_bytes(struct fake_worker *fw, const char *text) { fake_read_data(fw, text, strlen(text)); }
void fake_read_again(struct fake_worker *fw) { add(fw->reads, &fw->n_reads, (struct fake_io){.kind = FAKE_AGAIN}); }
void fake_read_eof(struct fake_worker *fw) { add(fw->reads, &fw->n_reads, (struct fake_io){.kind = FAKE_EOF}); }
void fake_read_error(struct fake_worker *fw, int err)
{
    add(fw->reads, &fw->n_reads, (struct fake_io){.kind = FAKE_ERROR, .err = err});
}
void fake_write_take(struct fake_worker *fw, size_t n)
{
    add(fw->writes, &fw->n_writes, (struct fake_io){.kind = FAKE_BYTES, .len = n});
}
void fake_write_again(struct fake_worker *fw) { add(fw->writes, &fw->n_writes, (struct fake_io){.kind = FAKE_AGAIN}); }
void fake_write_error(struct fake_worker *fw, int err)
{
    add(fw->writes, &fw->n_writes, (struct fake_io){.kind = FAKE_ERROR, .err = err});
}

/* ---- what the client sees ---- */

const char *fake_seen(struct fake_worker *fw)
{
    if (buf_reserve(&fw->seen, 1) < 0)
        return "";
    buf_tail(&fw->seen)[0] = '\0';
    return buf_head(&fw->seen);
}

int fake_client_eof(struct fake_worker *fw)
{
    char b[256];
    for (;;) {
        ssize_t n = read(fw->client_fd, b, sizeof b);
        if (n == 0)
            return 1;
        if (n < 0)
            return 0; /* EAGAIN: open, nothing more */
    }
}

size_t fake_unsent(const struct fake_worker *fw)
{
    return buf_len(&fw->scratch) + (fw->conn ? buf_len(&fw->conn->out) : 0);
}
