/* store.c: the shared state store (store.h, API.md section 7).
 *
 * Pure C: it takes no GIL, calls no Python and never calls into Go, so
 * the Go reader goroutine (Erlang's requests) and every context's thread
 * (Python's) use it directly. NSTRIPES hash tables, each behind its own
 * mutex, chosen by the key's hash. A mutex is held only for the table's
 * pointer work: values are encoded, decoded and copied outside it, a
 * value block being immutable and reference-counted. Every mutation is
 * recorded in the mirror (mirror.h) under its stripe's mutex. */
#include "store.h"

#include "etfw.h"
#include "mirror.h"

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
            pyx_mirror_op(0, key, klen, e->val, e->n);
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
    pyx_mirror_after();
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
                pyx_mirror_op(1, key, klen, NULL, 0);
                break;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (gone == NULL)
        return PYX_STATE_NOT_FOUND;
    pyx_state_val_release(gone->val);
    free(gone);
    pyx_mirror_after();
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
            pyx_mirror_op(0, key, klen, NULL, *result);
        pthread_mutex_unlock(&s->mu);
        if (e != NULL || tried)
            break;
        /* a new key: make its entry outside the lock, then look again */
        if ((fresh = new_entry(h, key, klen)) == NULL)
            return PYX_STATE_NOMEM;
    }
    free(fresh);
    pyx_mirror_after();
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
        pyx_mirror_clear();
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
    pyx_mirror_after();
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

