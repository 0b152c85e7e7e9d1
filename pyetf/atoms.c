/* atoms.c: the sidecar's count of the new atoms Python makes (atoms.h).
 * An open-addressing set of names, FNV-1a hashed, grown at half full; it
 * holds at most the known names plus max_atoms. */
#include "atoms.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char *s; /* NULL: empty slot */
    size_t n;
    uint64_t h;
    int absent; /* asked: the BEAM had no such atom then */
} entry;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static entry *slots;
static size_t cap, count;
static long long max_atoms = 10000, spent;
/* Past the budget, how many names may still be asked of the BEAM: a
 * bucket of max_asks that fills again at ASKS_PER_S, so a loop of new names
 * costs at most asks_per_s round trips a second once it is empty. */
static long long max_asks = 1000, asks_left = 1000, asks_per_s = 100;
static double asks_at; /* seconds, CLOCK_MONOTONIC, of the last refill */
static int seeded;

/* Atoms the conversion writes itself, or the erlang module makes, and
 * AtomLimitError, the exception of a spent budget (py_atoms.erl has them all). */
static const char *const seeds[] = {"true", "false", "none", "nan", "infinity", "neg_infinity",
                                    "$cb", "$send", "ok", "error", "undefined", "Exception",
                                    "AtomLimitError"};

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* The slot of name: its entry, or the empty slot where it would go. */
static entry *find(const char *s, size_t n, uint64_t h)
{
    for (size_t i = (size_t)h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        entry *e = &slots[i];
        if (e->s == NULL || (e->h == h && e->n == n && memcmp(e->s, s, n) == 0))
            return e;
    }
}

static int grow(void)
{
    size_t ncap = cap ? cap * 2 : 256;
    entry *old = slots, *nslots = calloc(ncap, sizeof *nslots);
    if (nslots == NULL)
        return -1;
    size_t ocap = cap;
    slots = nslots;
    cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].s != NULL)
            *find(old[i].s, old[i].n, old[i].h) = old[i];
    free(old);
    return 0;
}

/* Adds name at its empty slot e (found for hash h); mu held. */
static int insert(entry *e, const char *s, size_t n, uint64_t h)
{
    char *copy = malloc(n + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, s, n);
    copy[n] = 0;
    *e = (entry){copy, n, h, 0};
    count++;
    return 0;
}

/* 1 when name is in the set, 0 when it was added, -1 out of memory; mu held. */
static int add(const char *s, size_t n)
{
    if ((count + 1) * 2 > cap && grow() < 0)
        return -1;
    uint64_t h = hash(s, n);
    entry *e = find(s, n, h);
    if (e->s != NULL) {
        e->absent = 0;
        return 1;
    }
    return insert(e, s, n, h);
}

static void seed(void)
{
    if (seeded)
        return;
    seeded = 1;
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        (void)add(seeds[i], strlen(seeds[i]));
}

void pyx_atoms_set_max(long long max)
{
    pthread_mutex_lock(&mu);
    max_atoms = max;
    pthread_mutex_unlock(&mu);
}

long long pyx_atoms_max(void)
{
    pthread_mutex_lock(&mu);
    long long m = max_atoms;
    pthread_mutex_unlock(&mu);
    return m;
}

void pyx_atoms_set_spent(long long n)
{
    pthread_mutex_lock(&mu);
    spent = n;
    pthread_mutex_unlock(&mu);
}

long long pyx_atoms_spent(void)
{
    pthread_mutex_lock(&mu);
    long long n = spent;
    pthread_mutex_unlock(&mu);
    return n;
}

int pyx_atoms_known(const char *name, size_t n)
{
    pthread_mutex_lock(&mu);
    seed();
    int rc = add(name, n) < 0 ? -1 : 0;
    pthread_mutex_unlock(&mu);
    return rc;
}

int pyx_atoms_admit(const char *name, size_t n)
{
    pthread_mutex_lock(&mu);
    seed();
    int rc;
    if ((count + 1) * 2 > cap && grow() < 0) {
        rc = -1;
    } else {
        uint64_t h = hash(name, n);
        entry *e = find(name, n, h);
        if (e->s != NULL && !e->absent)
            rc = 1;
        else if (spent >= max_atoms)
            rc = 0;
        else if (e->s != NULL) { /* asked before, and within the budget now */
            e->absent = 0;
            spent++;
            rc = 1;
        }
        else if (insert(e, name, n, h) < 0)
            rc = -1;
        else {
            spent++;
            rc = 1;
        }
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

void pyx_atoms_set_asks(long long n, long long per_s)
{
    pthread_mutex_lock(&mu);
    max_asks = asks_left = n;
    asks_per_s = per_s;
    pthread_mutex_unlock(&mu);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fills the bucket for the time since the last refill; mu held. */
static void refill(void)
{
    double now = now_s();
    long long add = (long long)((now - asks_at) * (double)asks_per_s);
    if (add <= 0)
        return;
    asks_at = now;
    asks_left = asks_left + add > max_asks ? max_asks : asks_left + add;
}

int pyx_atoms_ask_begin(const char *name, size_t n)
{
    pthread_mutex_lock(&mu);
    seed();
    entry *e = cap ? find(name, n, hash(name, n)) : NULL;
    int rc;
    if (e != NULL && e->s != NULL)
        rc = e->absent ? 0 : 1; /* asked before: absent; or known meanwhile */
    else if (refill(), asks_left <= 0)
        rc = 0;
    else {
        asks_left--;
        rc = 2;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

int pyx_atoms_ask_end(const char *name, size_t n, int exists)
{
    pthread_mutex_lock(&mu);
    int rc = 0;
    if ((count + 1) * 2 > cap && grow() < 0) {
        rc = -1;
    } else {
        uint64_t h = hash(name, n);
        entry *e = find(name, n, h);
        if (e->s == NULL) {
            rc = insert(e, name, n, h);
            if (rc == 0)
                e->absent = !exists;
        } else if (exists) {
            e->absent = 0;
        }
    }
    pthread_mutex_unlock(&mu);
    return rc;
}
