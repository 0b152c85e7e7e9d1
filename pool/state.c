/* state.c: the shared state store (state.h) and its Python face, the
 * state_* functions of the `erlang` module (API.md section 7).
 *
 * The store is pure C: it takes no GIL, calls no Python and never calls
 * into Go, so the Go reader goroutine (Erlang's requests) and every
 * context's thread (Python's) use it directly. NSTRIPES hash tables, each
 * behind its own mutex, chosen by the key's hash. A mutex is held only for
 * the table's pointer work: values are encoded, decoded and copied outside
 * it, a value block being immutable and reference-counted. */
#include "exec.h" /* Python.h first */
#include "state.h"
#include "output.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Values */

pyx_state_val *pyx_state_val_adopt(unsigned char *data, size_t len)
{
    pyx_state_val *v = malloc(sizeof *v);
    if (v == NULL) {
        free(data);
        return NULL;
    }
    v->refs = 1;
    v->len = len;
    v->data = data;
    return v;
}

pyx_state_val *pyx_state_val_copy(const void *etf, size_t len)
{
    unsigned char *data = malloc(len ? len : 1);
    if (data == NULL)
        return NULL;
    memcpy(data, etf, len);
    return pyx_state_val_adopt(data, len);
}

static void val_retain(pyx_state_val *v) { __atomic_add_fetch(&v->refs, 1, __ATOMIC_RELAXED); }

void pyx_state_val_release(pyx_state_val *v)
{
    if (v != NULL && __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        free(v->data);
        free(v);
    }
}

/* ETF tags of integers. */
enum { SMALL_INTEGER_EXT = 97, INTEGER_EXT = 98, SMALL_BIG_EXT = 110, LARGE_BIG_EXT = 111 };

/* Is etf (one whole term) an integer that fits 64 bits? Then 1 with *n. */
static int etf_int64(const unsigned char *etf, size_t len, long long *n)
{
    if (len == 2 && etf[0] == SMALL_INTEGER_EXT) {
        *n = etf[1];
        return 1;
    }
    if (len == 5 && etf[0] == INTEGER_EXT) {
        *n = (int32_t)((uint32_t)etf[1] << 24 | (uint32_t)etf[2] << 16 | (uint32_t)etf[3] << 8 | etf[4]);
        return 1;
    }
    size_t digits, at;
    if (len >= 3 && etf[0] == SMALL_BIG_EXT) {
        digits = etf[1];
        at = 2;
    } else if (len >= 6 && etf[0] == LARGE_BIG_EXT) {
        digits = (size_t)etf[1] << 24 | (size_t)etf[2] << 16 | (size_t)etf[3] << 8 | etf[4];
        at = 5;
    } else {
        return 0;
    }
    if (digits > 8 || len != at + 1 + digits)
        return 0;
    int negative = etf[at] != 0;
    uint64_t mag = 0;
    for (size_t i = digits; i > 0; i--)
        mag = mag << 8 | etf[at + i];
    if (!negative && mag <= (uint64_t)INT64_MAX)
        *n = (long long)mag;
    else if (negative && mag <= (uint64_t)INT64_MAX + 1)
        *n = (long long)(0 - mag);
    else
        return 0;
    return 1;
}

/* ------------------------------------------------------------------ */
/* The mirror (state.h): every mutation, as an op term appended to one
 * buffer while the mutating thread still holds its stripe's mutex (lock
 * order: stripe -> mirror.mu), so the ops of one key are in the order of
 * its mutations. The buffer holds the whole packet that output.c sends:
 * term_to_binary('$state') ++ term_to_binary([Op, ...]), its list header
 * reserved at the front and patched when it is taken. */

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

/* '$state', versioned, then 131, LIST_EXT and a count patched at take. */
static const unsigned char mirror_head[] = {131, 119, 6, '$', 's', 't', 'a', 't', 'e', 131, 108, 0, 0, 0, 0};

/* Appends the ETF of integer n (no version byte). */
static void put_int(pyx_buf *b, long long n)
{
    unsigned char t[11];
    size_t len;
    if (n >= 0 && n <= 255) {
        t[0] = SMALL_INTEGER_EXT;
        t[1] = (unsigned char)n;
        len = 2;
    } else if (n >= INT32_MIN && n <= INT32_MAX) {
        uint32_t u = (uint32_t)n;
        t[0] = INTEGER_EXT;
        t[1] = (unsigned char)(u >> 24);
        t[2] = (unsigned char)(u >> 16);
        t[3] = (unsigned char)(u >> 8);
        t[4] = (unsigned char)u;
        len = 5;
    } else {
        uint64_t mag = n < 0 ? 0 - (uint64_t)n : (uint64_t)n;
        t[0] = SMALL_BIG_EXT;
        t[2] = n < 0;
        len = 3;
        for (; mag != 0; mag >>= 8)
            t[len++] = (unsigned char)mag;
        t[1] = (unsigned char)(len - 3);
    }
    (void)pyx_buf_append(b, t, len);
}

/* Starts an op: {Name, Key...} of arity (tuple header, the atom, the key
 * as a binary). 1 when it replaced the last op, else 0. mirror.mu held. */
static int op_head(pyx_buf *b, const char *name, unsigned char namelen, unsigned char arity, const void *key,
                    size_t klen)
{
    unsigned char t[16 + 4] = {104, arity, 119, namelen};
    memcpy(t + 4, name, namelen);
    size_t at = 4u + namelen;
    t[at++] = 109; /* BINARY_EXT */
    t[at++] = (unsigned char)(klen >> 24);
    t[at++] = (unsigned char)(klen >> 16);
    t[at++] = (unsigned char)(klen >> 8);
    t[at++] = (unsigned char)klen;
    if (b->len == 0)
        (void)pyx_buf_append(b, mirror_head, sizeof mirror_head);
    /* The same key as the last op still buffered: that op is dropped, as
     * no packet went out between the two (a hot counter costs one op per
     * flush, not one per incr). count is left alone: it must not read 0
     * meanwhile (pyx_state_mirror_pending). */
    int replaced = mirror.count > 0 && mirror.last_keyed && mirror.last_klen == klen &&
                   memcmp(b->data + mirror.last_key, key, klen) == 0;
    if (replaced)
        b->len = mirror.last_op;
    mirror.last_op = b->len;
    mirror.last_key = b->len + at;
    mirror.last_klen = klen;
    mirror.last_keyed = pyx_buf_append(b, t, at) == 0 && pyx_buf_append(b, key, klen) == 0;
    return replaced;
}

/* Records {set, Key, Value} (v's bytes, or the integer n) or, with del,
 * {delete, Key}. The key's stripe mutex held. Out of memory loses the op
 * (and the mirror is then incomplete: nothing better to do). */
static void mirror_op(int del, const void *key, size_t klen, const pyx_state_val *v, long long n)
{
    if (!__atomic_load_n(&mirror.on, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&mirror.mu);
    pyx_buf *b = &mirror.buf;
    int replaced;
    if (del) {
        replaced = op_head(b, "delete", 6, 2, key, klen);
    } else {
        replaced = op_head(b, "set", 3, 3, key, klen);
        if (v != NULL)
            (void)pyx_buf_append(b, v->data, v->len);
        else
            put_int(b, n);
    }
    __atomic_store_n(&mirror.bytes, mirror.buf.len, __ATOMIC_RELAXED);
    __atomic_store_n(&mirror.count, mirror.count + !replaced, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mirror.mu);
}

/* Records clear. Every stripe mutex held. */
static void mirror_clear(void)
{
    static const unsigned char op[] = {119, 5, 'c', 'l', 'e', 'a', 'r'};
    if (!__atomic_load_n(&mirror.on, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&mirror.mu);
    /* the ops still buffered are void: clear replaces them (count never
     * reads 0 meanwhile) */
    mirror.buf.len = 0;
    mirror.last_keyed = 0;
    (void)pyx_buf_append(&mirror.buf, mirror_head, sizeof mirror_head);
    (void)pyx_buf_append(&mirror.buf, op, sizeof op);
    __atomic_store_n(&mirror.bytes, mirror.buf.len, __ATOMIC_RELAXED);
    __atomic_store_n(&mirror.count, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&mirror.mu);
}

/* After a mutation, its stripe unlocked: lets output.c flush soon. */
static void mirror_after(void)
{
    if (__atomic_load_n(&mirror.on, __ATOMIC_RELAXED))
        pyx_out_mirror_poke(__atomic_load_n(&mirror.bytes, __ATOMIC_RELAXED));
}

size_t pyx_state_mirror_pending(void) { return __atomic_load_n(&mirror.count, __ATOMIC_ACQUIRE); }

int pyx_state_mirror_take(unsigned char **data, size_t *len, size_t *cap)
{
    pthread_mutex_lock(&mirror.mu);
    size_t n = mirror.count;
    if (n == 0 || pyx_buf_append(&mirror.buf, (unsigned char[]){106}, 1) < 0) {
        pthread_mutex_unlock(&mirror.mu);
        return 0;
    }
    unsigned char *c = mirror.buf.data + sizeof mirror_head - 4;
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

void pyx_state_mirror_enable(int on)
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

/* ------------------------------------------------------------------ */
/* The store */

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    pyx_state_val *val; /* NULL: the value is the integer n */
    long long n;
    size_t klen;
    unsigned char key[];
} entry;

typedef struct {
    pthread_mutex_t mu;
    entry **buckets; /* nbuckets, a power of two; NULL until the first key */
    size_t nbuckets, count;
} stripe;

#define NSTRIPES 16
static stripe stripes[NSTRIPES] = {[0 ... NSTRIPES - 1] = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0}};

/* FNV-1a, 64 bits: the top bits choose the stripe, the low ones the bucket. */
static uint64_t hash_key(const unsigned char *k, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ k[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static stripe *stripe_of(uint64_t h) { return &stripes[h >> 60]; }

/* The entry for key in s, or NULL. s->mu held. */
static entry *find(stripe *s, uint64_t h, const void *key, size_t klen)
{
    if (s->buckets == NULL)
        return NULL;
    for (entry *e = s->buckets[h & (s->nbuckets - 1)]; e != NULL; e = e->next)
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    return NULL;
}

/* A new entry for key, not yet in any table; NULL when out of memory. */
static entry *new_entry(uint64_t h, const void *key, size_t klen)
{
    entry *e = malloc(sizeof *e + klen);
    if (e == NULL)
        return NULL;
    e->next = NULL;
    e->hash = h;
    e->val = NULL;
    e->n = 0;
    e->klen = klen;
    memcpy(e->key, key, klen);
    return e;
}

/* Links e into s, growing the table first when it is full. 0, or -1 when
 * out of memory. s->mu held. */
static int link_entry(stripe *s, entry *e)
{
    if (s->count >= s->nbuckets) {
        size_t nb = s->nbuckets ? s->nbuckets * 2 : 16;
        entry **b = calloc(nb, sizeof *b);
        if (b == NULL && s->buckets == NULL)
            return -1;
        if (b != NULL) { /* else keep the old table, only fuller */
            for (size_t i = 0; i < s->nbuckets; i++) {
                for (entry *x = s->buckets[i], *next; x != NULL; x = next) {
                    next = x->next;
                    x->next = b[x->hash & (nb - 1)];
                    b[x->hash & (nb - 1)] = x;
                }
            }
            free(s->buckets);
            s->buckets = b;
            s->nbuckets = nb;
        }
    }
    entry **head = &s->buckets[e->hash & (s->nbuckets - 1)];
    e->next = *head;
    *head = e;
    s->count++;
    return 0;
}

/* Stores key -> (v or n), taking v's reference. */
static int put(const void *key, size_t klen, pyx_state_val *v, long long n)
{
    uint64_t h = hash_key(key, klen);
    stripe *s = stripe_of(h);
    entry *fresh = NULL;
    pyx_state_val *old = NULL;
    int rc = PYX_STATE_OK;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        entry *e = find(s, h, key, klen);
        if (e == NULL && fresh != NULL) {
            if (link_entry(s, fresh) < 0) {
                rc = PYX_STATE_NOMEM;
                e = NULL;
            } else {
                e = fresh;
                fresh = NULL;
            }
        }
        if (e != NULL) {
            old = e->val;
            e->val = v;
            e->n = n;
            v = NULL;
            mirror_op(0, key, klen, e->val, e->n);
        }
        pthread_mutex_unlock(&s->mu);
        if (e != NULL || rc != PYX_STATE_OK)
            break;
        /* a new key: make its entry outside the lock, then look again */
        if ((fresh = new_entry(h, key, klen)) == NULL) {
            rc = PYX_STATE_NOMEM;
            break;
        }
    }
    free(fresh);
    pyx_state_val_release(old);
    pyx_state_val_release(v); /* not stored (out of memory) */
    mirror_after();
    return rc;
}

int pyx_state_put(const void *key, size_t klen, pyx_state_val *v)
{
    long long n;
    if (v == NULL)
        return PYX_STATE_NOMEM;
    if (etf_int64(v->data, v->len, &n)) {
        pyx_state_val_release(v);
        return put(key, klen, NULL, n);
    }
    return put(key, klen, v, 0);
}

int pyx_state_put_int(const void *key, size_t klen, long long n) { return put(key, klen, NULL, n); }

int pyx_state_get(const void *key, size_t klen, pyx_state_val **val, long long *n)
{
    uint64_t h = hash_key(key, klen);
    stripe *s = stripe_of(h);
    int rc = PYX_STATE_NOT_FOUND;
    pthread_mutex_lock(&s->mu);
    entry *e = find(s, h, key, klen);
    if (e != NULL) {
        rc = PYX_STATE_OK;
        *val = e->val;
        *n = e->n;
        if (e->val != NULL)
            val_retain(e->val);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int pyx_state_delete(const void *key, size_t klen)
{
    uint64_t h = hash_key(key, klen);
    stripe *s = stripe_of(h);
    entry *gone = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->buckets != NULL) {
        for (entry **p = &s->buckets[h & (s->nbuckets - 1)]; *p != NULL; p = &(*p)->next) {
            entry *e = *p;
            if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) {
                *p = e->next;
                s->count--;
                gone = e;
                mirror_op(1, key, klen, NULL, 0);
                break;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (gone == NULL)
        return PYX_STATE_NOT_FOUND;
    pyx_state_val_release(gone->val);
    free(gone);
    mirror_after();
    return PYX_STATE_OK;
}

/* incr on entry e: s->mu held. */
static int add(entry *e, long long delta, long long *result)
{
    if (e->val != NULL) {
        unsigned tag = e->val->len ? e->val->data[0] : 0;
        return tag == SMALL_BIG_EXT || tag == LARGE_BIG_EXT ? PYX_STATE_OVERFLOW : PYX_STATE_NOT_INTEGER;
    }
    long long r;
    if (__builtin_add_overflow(e->n, delta, &r))
        return PYX_STATE_OVERFLOW;
    e->n = *result = r;
    return PYX_STATE_OK;
}

int pyx_state_incr(const void *key, size_t klen, long long delta, long long *result)
{
    uint64_t h = hash_key(key, klen);
    stripe *s = stripe_of(h);
    entry *fresh = NULL;
    int rc = PYX_STATE_OK;
    for (int tried = 0;; tried = 1) {
        pthread_mutex_lock(&s->mu);
        entry *e = find(s, h, key, klen);
        if (e != NULL) {
            rc = add(e, delta, result);
        } else if (tried) { /* still missing: it starts at 0 */
            if (link_entry(s, fresh) < 0) {
                rc = PYX_STATE_NOMEM;
            } else {
                fresh->n = *result = delta;
                fresh = NULL;
            }
        }
        if ((e != NULL || tried) && rc == PYX_STATE_OK)
            mirror_op(0, key, klen, NULL, *result);
        pthread_mutex_unlock(&s->mu);
        if (e != NULL || tried)
            break;
        /* a new key: make its entry outside the lock, then look again */
        if ((fresh = new_entry(h, key, klen)) == NULL)
            return PYX_STATE_NOMEM;
    }
    free(fresh);
    mirror_after();
    return rc;
}

/* Every stripe's table: taken out (returned in old) and replaced by
 * fresh's (NULL: empty), all stripes at once, so that no mutation of
 * another thread falls between the first stripe and the last. With
 * record, a clear op is mirrored under the same locks. */
static void swap_all(stripe *fresh, stripe *old, int record)
{
    for (int i = 0; i < NSTRIPES; i++) /* always in this order */
        pthread_mutex_lock(&stripes[i].mu);
    for (int i = 0; i < NSTRIPES; i++) {
        stripe *s = &stripes[i];
        old[i].buckets = s->buckets;
        old[i].nbuckets = s->nbuckets;
        s->buckets = fresh ? fresh[i].buckets : NULL;
        s->nbuckets = fresh ? fresh[i].nbuckets : 0;
        s->count = fresh ? fresh[i].count : 0;
    }
    if (record)
        mirror_clear();
    for (int i = NSTRIPES - 1; i >= 0; i--)
        pthread_mutex_unlock(&stripes[i].mu);
}

/* Frees the tables of old (taken out by swap_all), no lock held. */
static void free_tables(stripe *old)
{
    for (int i = 0; i < NSTRIPES; i++) {
        for (size_t j = 0; j < old[i].nbuckets; j++) {
            for (entry *e = old[i].buckets[j], *next; e != NULL; e = next) {
                next = e->next;
                pyx_state_val_release(e->val);
                free(e);
            }
        }
        free(old[i].buckets);
    }
}

void pyx_state_clear(void)
{
    stripe old[NSTRIPES];
    swap_all(NULL, old, 1);
    free_tables(old);
    mirror_after();
}

int pyx_state_load(const unsigned char *flat, size_t len)
{
    stripe fresh[NSTRIPES], old[NSTRIPES];
    memset(fresh, 0, sizeof fresh);
    size_t pos = 0;
    int rc = PYX_STATE_OK;
    while (rc == PYX_STATE_OK && len - pos >= 8) {
        uint32_t klen, vlen;
        memcpy(&klen, flat + pos, 4);
        const unsigned char *key = flat + pos + 4;
        if (len - pos - 8 < klen)
            break;
        memcpy(&vlen, key + klen, 4);
        const unsigned char *val = key + klen + 4;
        if (len - pos - 8 - klen < vlen)
            break;
        pos += 8 + (size_t)klen + vlen;
        uint64_t h = hash_key(key, klen);
        stripe *s = &fresh[h >> 60];
        entry *e = find(s, h, key, klen); /* a key given twice: the last wins */
        if (e == NULL) {
            if ((e = new_entry(h, key, klen)) == NULL || link_entry(s, e) < 0) {
                free(e);
                rc = PYX_STATE_NOMEM;
                break;
            }
        }
        pyx_state_val_release(e->val);
        e->val = NULL;
        if (!etf_int64(val, vlen, &e->n) && (e->val = pyx_state_val_copy(val, vlen)) == NULL)
            rc = PYX_STATE_NOMEM;
    }
    if (rc == PYX_STATE_OK && pos != len)
        rc = PYX_STATE_NOT_FOUND; /* malformed */
    if (rc != PYX_STATE_OK) {
        free_tables(fresh);
        return rc;
    }
    swap_all(fresh, old, 0);
    free_tables(old);
    return PYX_STATE_OK;
}

long pyx_state_keys(unsigned char **out, size_t *len)
{
    pyx_buf b = {0};
    long count = 0;
    int failed = 0;
    for (int i = 0; i < NSTRIPES && !failed; i++) {
        stripe *s = &stripes[i];
        pthread_mutex_lock(&s->mu);
        for (size_t j = 0; j < s->nbuckets && !failed; j++) {
            for (entry *e = s->buckets[j]; e != NULL && !failed; e = e->next) {
                uint32_t n = (uint32_t)e->klen;
                failed = pyx_buf_append(&b, &n, sizeof n) < 0 || pyx_buf_append(&b, e->key, e->klen) < 0;
                count++;
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    if (failed) {
        pyx_buf_free(&b);
        return -1;
    }
    *out = b.data;
    *len = b.len;
    return count;
}

/* ------------------------------------------------------------------ */
/* Python: erlang.state_* (the GIL held on entry and exit of each; the
 * store's mutexes are taken inside the calls above, never across Python
 * code) */

/* The bytes of a str (its UTF-8, cached by the str) or bytes key, valid
 * while key lives. 0, or -1 with TypeError (or UnicodeEncodeError). */
static int state_key(PyObject *key, const char **k, Py_ssize_t *n)
{
    if (PyUnicode_Check(key)) {
        *k = PyUnicode_AsUTF8AndSize(key, n);
        return *k == NULL ? -1 : 0;
    }
    if (PyBytes_Check(key)) {
        *k = PyBytes_AS_STRING(key);
        *n = PyBytes_GET_SIZE(key);
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "erlang.state: a key must be str or bytes, not %.200s", Py_TYPE(key)->tp_name);
    return -1;
}

static PyObject *state_error(int rc, PyObject *key)
{
    switch (rc) {
    case PYX_STATE_NOT_FOUND:
        PyErr_SetObject(PyExc_KeyError, key);
        break;
    case PYX_STATE_NOT_INTEGER:
        PyErr_Format(PyExc_TypeError, "erlang.state: the value of %R is not an integer", key);
        break;
    case PYX_STATE_OVERFLOW:
        PyErr_Format(PyExc_OverflowError, "erlang.state: the value of %R would not fit 64 bits", key);
        break;
    default:
        PyErr_NoMemory();
    }
    return NULL;
}

/* state_set(key, value): value becomes a term (an int of 64 bits stays an
 * int, without encoding). */
static PyObject *state_set(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const char *k;
    Py_ssize_t kn;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "state_set(key, value) takes 2 arguments");
        return NULL;
    }
    if (state_key(args[0], &k, &kn) < 0)
        return NULL;
    int rc;
    if (PyLong_CheckExact(args[1])) {
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(args[1], &overflow);
        if (n == -1 && PyErr_Occurred())
            return NULL;
        if (!overflow) {
            rc = pyx_state_put_int(k, (size_t)kn, n);
            return rc == PYX_STATE_OK ? Py_NewRef(Py_None) : state_error(rc, args[0]);
        }
    }
    pyx_module_types st;
    pyx_buf b = {0}; /* owned until adopted by the value */
    if (pyx_module_types_get(module, &st) < 0 || pyx_to_etf(&st.t, args[1], &b) < 0) {
        pyx_module_types_put(&st);
        pyx_buf_free(&b);
        return NULL;
    }
    pyx_module_types_put(&st);
    rc = pyx_state_put(k, (size_t)kn, pyx_state_val_adopt(b.data, b.len));
    return rc == PYX_STATE_OK ? Py_NewRef(Py_None) : state_error(rc, args[0]);
}

/* state_get(key): the value, or KeyError. */
static PyObject *state_get(PyObject *module, PyObject *key)
{
    const char *k;
    Py_ssize_t kn;
    pyx_state_val *v = NULL; /* a reference, released below */
    long long n;
    if (state_key(key, &k, &kn) < 0)
        return NULL;
    int rc = pyx_state_get(k, (size_t)kn, &v, &n);
    if (rc != PYX_STATE_OK)
        return state_error(rc, key);
    if (v == NULL)
        return PyLong_FromLongLong(n);
    pyx_module_types st;
    PyObject *res = NULL;
    if (pyx_module_types_get(module, &st) == 0) {
        size_t pos = 0;
        res = pyx_from_etf(&st.t, v->data, v->len, &pos);
    }
    pyx_module_types_put(&st);
    pyx_state_val_release(v);
    return res;
}

/* state_delete(key): removes key; a missing key is no error. */
static PyObject *state_delete(PyObject *module, PyObject *key)
{
    (void)module;
    const char *k;
    Py_ssize_t kn;
    if (state_key(key, &k, &kn) < 0)
        return NULL;
    (void)pyx_state_delete(k, (size_t)kn);
    Py_RETURN_NONE;
}

/* state_keys(): the keys, in no order: str, or bytes for a key that is
 * not UTF-8. */
static PyObject *state_keys(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    unsigned char *buf = NULL; /* malloc'd, freed below */
    size_t len = 0, pos = 0;
    long count = pyx_state_keys(&buf, &len);
    if (count < 0)
        return PyErr_NoMemory();
    PyObject *list = PyList_New(count);
    for (long i = 0; list != NULL && i < count; i++) {
        uint32_t n;
        memcpy(&n, buf + pos, sizeof n);
        const char *k = (const char *)buf + pos + sizeof n;
        pos += sizeof n + n;
        PyObject *key = PyUnicode_DecodeUTF8(k, n, NULL);
        if (key == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear();
            key = PyBytes_FromStringAndSize(k, n);
        }
        if (key == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, i, key); /* steals key */
    }
    free(buf);
    return list;
}

/* incr/decr: (key, n=1) -> the new value. */
static PyObject *state_add(PyObject *const *args, Py_ssize_t nargs, int sign, const char *name)
{
    const char *k;
    Py_ssize_t kn;
    long long n = 1, result;
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "%s(key, n=1) takes 1 or 2 arguments", name);
        return NULL;
    }
    if (state_key(args[0], &k, &kn) < 0)
        return NULL;
    if (nargs == 2) {
        if (!PyLong_Check(args[1])) {
            PyErr_Format(PyExc_TypeError, "%s: n must be an int, not %.200s", name, Py_TYPE(args[1])->tp_name);
            return NULL;
        }
        n = PyLong_AsLongLong(args[1]); /* OverflowError past 64 bits */
        if (n == -1 && PyErr_Occurred())
            return NULL;
    }
    if (sign < 0) {
        if (n == LLONG_MIN)
            return state_error(PYX_STATE_OVERFLOW, args[0]);
        n = -n;
    }
    int rc = pyx_state_incr(k, (size_t)kn, n, &result);
    return rc == PYX_STATE_OK ? PyLong_FromLongLong(result) : state_error(rc, args[0]);
}

static PyObject *state_incr(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    return state_add(args, nargs, 1, "state_incr");
}

static PyObject *state_decr(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    return state_add(args, nargs, -1, "state_decr");
}

static PyMethodDef state_methods[] = {
    {"state_set", (PyCFunction)(void (*)(void))state_set, METH_FASTCALL,
     "state_set(key, value): stores a term under key, shared by every context and Erlang"},
    {"state_get", state_get, METH_O, "state_get(key): the value under key; KeyError if none"},
    {"state_delete", state_delete, METH_O, "state_delete(key): removes key"},
    {"state_keys", state_keys, METH_NOARGS, "state_keys(): the list of keys"},
    {"state_incr", (PyCFunction)(void (*)(void))state_incr, METH_FASTCALL,
     "state_incr(key, n=1): adds n to the integer under key (0 if none), atomically; returns it"},
    {"state_decr", (PyCFunction)(void (*)(void))state_decr, METH_FASTCALL,
     "state_decr(key, n=1): subtracts n from the integer under key (0 if none), atomically; returns it"},
    {NULL, NULL, 0, NULL},
};

int pyx_state_add_functions(PyObject *module) { return PyModule_AddFunctions(module, state_methods); }
