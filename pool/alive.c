/* alive.c: the pids erlang.send knows alive (alive.h): a chained hash
 * table under one mutex. */
#include "alive.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 16384 /* a power of 2 */

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    size_t len;
    unsigned char pid[];
} entry;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static entry *buckets[BUCKETS];
static size_t count;
static uint64_t exits; /* under mu: exits heard, for pyx_alive_add */

static uint64_t hash_of(const void *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ULL;
    return h;
}

/* The link that points at pid's entry, or at the end of its chain. */
static entry **find(const void *pid, size_t len, uint64_t h)
{
    entry **e = &buckets[h & (BUCKETS - 1)];
    while (*e != NULL && !((*e)->hash == h && (*e)->len == len && memcmp((*e)->pid, pid, len) == 0))
        e = &(*e)->next;
    return e;
}

static void clear(void)
{
    for (size_t i = 0; i < BUCKETS; i++)
        while (buckets[i] != NULL) {
            entry *e = buckets[i];
            buckets[i] = e->next;
            free(e);
        }
    count = 0;
}

int pyx_alive_known(const void *pid, size_t len, uint64_t *epoch)
{
    uint64_t h = hash_of(pid, len);
    pthread_mutex_lock(&mu);
    int known = *find(pid, len, h) != NULL;
    *epoch = exits;
    pthread_mutex_unlock(&mu);
    return known;
}

uint64_t pyx_alive_epoch(void) { return __atomic_load_n(&exits, __ATOMIC_ACQUIRE); }

int pyx_alive_add(const void *pid, size_t len, uint64_t epoch)
{
    uint64_t h = hash_of(pid, len);
    entry *n = malloc(sizeof *n + len);
    if (n == NULL)
        return -1;
    *n = (entry){.hash = h, .len = len};
    memcpy(n->pid, pid, len);
    pthread_mutex_lock(&mu);
    entry **e = find(pid, len, h);
    if (epoch == exits && *e == NULL) {
        if (count >= PYX_ALIVE_MAX) {
            clear();
            e = find(pid, len, h);
        }
        *e = n;
        n = NULL;
        count++;
    }
    pthread_mutex_unlock(&mu);
    free(n);
    return 0;
}

void pyx_alive_forget(const void *pid, size_t len)
{
    uint64_t h = hash_of(pid, len);
    pthread_mutex_lock(&mu);
    __atomic_store_n(&exits, exits + 1, __ATOMIC_RELEASE);
    entry **e = find(pid, len, h);
    if (*e != NULL) {
        entry *gone = *e;
        *e = gone->next;
        free(gone);
        count--;
    }
    pthread_mutex_unlock(&mu);
}

size_t pyx_alive_count(void)
{
    pthread_mutex_lock(&mu);
    size_t n = count;
    pthread_mutex_unlock(&mu);
    return n;
}
