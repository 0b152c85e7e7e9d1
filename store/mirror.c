/* mirror.c: the shared state's mirror (mirror.h).
 *
 * Every mutation, as an op term appended to one buffer while the mutating
 * thread still holds its stripe's mutex (lock order: stripe -> mirror.mu),
 * so the ops of one key are in the order of its mutations. The buffer
 * holds the whole packet: term_to_binary('$state') ++
 * term_to_binary([Op, ...]), its list header reserved at the front and
 * patched when it is taken. */
#include "mirror.h"

#include "etfw.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
    pthread_mutex_t mu;
    pyx_buf buf;  /* under mu */
    size_t count; /* ops in buf: written under mu, read atomically */
    size_t bytes; /* buf.len: written under mu, read atomically */
    int on;       /* atomic: record ops at all */
    /* the last op, if keyed (count > 0): where it starts, where its key is */
    size_t last_op, last_key, last_klen;
    int last_keyed;
} mirror = {PTHREAD_MUTEX_INITIALIZER, {NULL, 0, 0}, 0, 0, 0, 0, 0, 0, 0};

/* Starts the buffer: '$state', versioned, then 131, LIST_EXT and a count
 * patched at take (at HEAD_LEN - 4). */
#define HEAD_LEN 15
static void put_head(pyx_buf *b)
{
    (void)(pyx_etf_version(b) < 0 || pyx_etf_atom(b, "$state") < 0 || pyx_etf_version(b) < 0 ||
           pyx_etf_list(b, 0) < 0);
}

/* Starts an op: {Name, Key...} of arity (tuple header, the atom, the key
 * as a binary). 1 when it replaced the last op, else 0. mirror.mu held. */
static int op_head(pyx_buf *b, const char *name, unsigned char arity, const void *key, size_t klen)
{
    if (b->len == 0)
        put_head(b);
    /* The same key as the last op still buffered: that op is dropped, as
     * no packet went out between the two (a hot counter costs one op per
     * flush, not one per incr). count is left alone: it must not read 0
     * meanwhile (the hook looks at it). */
    int replaced = mirror.count > 0 && mirror.last_keyed && mirror.last_klen == klen &&
                   memcmp(b->data + mirror.last_key, key, klen) == 0;
    if (replaced)
        b->len = mirror.last_op;
    mirror.last_op = b->len;
    mirror.last_keyed = pyx_etf_tuple(b, arity) == 0 && pyx_etf_atom(b, name) == 0 &&
                        pyx_etf_binary_head(b, klen) == 0;
    mirror.last_key = b->len;
    mirror.last_klen = klen;
    mirror.last_keyed = mirror.last_keyed && pyx_buf_append(b, key, klen) == 0;
    return replaced;
}

void pyx_mirror_op(int del, const void *key, size_t klen, const pyx_state_val *v, long long n)
{
    if (!__atomic_load_n(&mirror.on, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&mirror.mu);
    pyx_buf *b = &mirror.buf;
    int replaced;
    if (del) {
        replaced = op_head(b, "delete", 2, key, klen);
    } else {
        replaced = op_head(b, "set", 3, key, klen);
        if (v != NULL)
            (void)pyx_buf_append(b, v->data, v->len);
        else
            (void)pyx_etf_int(b, n);
    }
    __atomic_store_n(&mirror.bytes, mirror.buf.len, __ATOMIC_RELAXED);
    __atomic_store_n(&mirror.count, mirror.count + !replaced, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mirror.mu);
}

void pyx_mirror_clear(void)
{
    if (!__atomic_load_n(&mirror.on, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&mirror.mu);
    /* the ops still buffered are void: clear replaces them (count never
     * reads 0 meanwhile) */
    mirror.buf.len = 0;
    mirror.last_keyed = 0;
    put_head(&mirror.buf);
    (void)pyx_etf_atom(&mirror.buf, "clear");
    __atomic_store_n(&mirror.bytes, mirror.buf.len, __ATOMIC_RELAXED);
    __atomic_store_n(&mirror.count, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mirror.mu);
}

static void poke(size_t buffered);

void pyx_mirror_after(void)
{
    if (__atomic_load_n(&mirror.on, __ATOMIC_RELAXED))
        poke(__atomic_load_n(&mirror.bytes, __ATOMIC_RELAXED));
}

/* When ops are buffered: 1, and *data, *len, *cap become the whole packet,
 * the caller's buffer (*data, *cap: malloc'd or NULL, its contents
 * dropped) taking its place. Else 0, nothing changed. */
static int take(unsigned char **data, size_t *len, size_t *cap)
{
    pthread_mutex_lock(&mirror.mu);
    size_t n = mirror.count;
    if (n == 0 || pyx_buf_append(&mirror.buf, (unsigned char[]){106}, 1) < 0) {
        pthread_mutex_unlock(&mirror.mu);
        return 0;
    }
    unsigned char *c = mirror.buf.data + HEAD_LEN - 4;
    c[0] = (unsigned char)(n >> 24);
    c[1] = (unsigned char)(n >> 16);
    c[2] = (unsigned char)(n >> 8);
    c[3] = (unsigned char)n;
    /* swap: the caller's empty buffer (its memory kept) becomes ours */
    pyx_buf mine = mirror.buf;
    mirror.buf = (pyx_buf){*data, 0, *cap};
    __atomic_store_n(&mirror.bytes, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&mirror.count, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mirror.mu);
    *data = mine.data;
    *len = mine.len;
    *cap = mine.cap;
    return 1;
}

/* Records ops from now on (on), or stops and drops what is buffered. */
static void enable(int on)
{
    pthread_mutex_lock(&mirror.mu);
    __atomic_store_n(&mirror.on, on, __ATOMIC_RELAXED);
    if (!on) {
        pyx_buf_free(&mirror.buf);
        __atomic_store_n(&mirror.bytes, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&mirror.count, 0, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&mirror.mu);
}


/* The mirror's own flushes: when its buffer passes MIRROR_FULL, and a
 * timer thread that sends what nothing else did within MIRROR_DELAY_NS.
 * The thread sleeps on a condition variable while idle; a mutation wakes
 * it only when it is not armed already, so at most once per delay. */

#define MIRROR_FULL (64u << 10)
#define MIRROR_DELAY_NS 5000000L

static pyx_out *mirror_out;  /* atomic: where the mirror goes, or NULL */
static int timer_armed;      /* atomic */
static pthread_mutex_t timer_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t timer_cv = PTHREAD_COND_INITIALIZER;
static int timer_kicked;     /* under timer_mu */
static pthread_once_t timer_once = PTHREAD_ONCE_INIT;

/* The mirror packet being sent, and its buffer kept for the next: under
 * scratch_mu (lock order: the output's mutex -> scratch_mu -> mirror.mu). */
static pthread_mutex_t scratch_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *sdata;
static size_t slen, scap;

/* o's pre-frame hook (port/output.h): puts the pending mirror packet, if
 * any, before whatever o writes next. Under o's mutex. */
static void hook(pyx_out *o)
{
    if (__atomic_load_n(&mirror.count, __ATOMIC_ACQUIRE) == 0)
        return;
    pthread_mutex_lock(&scratch_mu);
    slen = 0;
    if (take(&sdata, &slen, &scap))
        pyx_out_put(o, sdata, slen, NULL, 0);
    if (scap > (1u << 20)) { /* do not keep a large one */
        free(sdata);
        sdata = NULL;
        scap = 0;
    }
    pthread_mutex_unlock(&scratch_mu);
}

static void *timer_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&timer_mu);
        while (!timer_kicked)
            pthread_cond_wait(&timer_cv, &timer_mu);
        timer_kicked = 0;
        pthread_mutex_unlock(&timer_mu);
        struct timespec d = {0, MIRROR_DELAY_NS};
        while (nanosleep(&d, &d) < 0 && errno == EINTR)
            ;
        /* disarm first: an op after this kicks again, one before is sent */
        __atomic_store_n(&timer_armed, 0, __ATOMIC_SEQ_CST);
        pyx_out *o = __atomic_load_n(&mirror_out, __ATOMIC_ACQUIRE);
        if (o != NULL)
            pyx_out_kick(o);
    }
    return NULL;
}

static void timer_start(void)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    (void)pthread_create(&t, &attr, timer_main, NULL); /* without it: no timed flush */
    pthread_attr_destroy(&attr);
}

static void poke(size_t buffered)
{
    pyx_out *o = __atomic_load_n(&mirror_out, __ATOMIC_ACQUIRE);
    if (o == NULL)
        return;
    if (buffered > MIRROR_FULL) {
        pyx_out_kick(o);
        return;
    }
    if (__atomic_load_n(&timer_armed, __ATOMIC_RELAXED) || __atomic_exchange_n(&timer_armed, 1, __ATOMIC_SEQ_CST))
        return;
    pthread_mutex_lock(&timer_mu);
    timer_kicked = 1;
    pthread_cond_signal(&timer_cv);
    pthread_mutex_unlock(&timer_mu);
}

void pyx_mirror_to(pyx_out *o, int on)
{
    pthread_once(&timer_once, timer_start);
    pyx_out *old = __atomic_exchange_n(&mirror_out, on ? o : NULL, __ATOMIC_ACQ_REL);
    if (old != NULL && old != o)
        pyx_out_set_hook(old, NULL);
    pyx_out_set_hook(o, on ? hook : NULL);
    enable(on);
}
