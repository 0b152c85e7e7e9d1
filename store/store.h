/* store.h: the process-wide shared state (store.c, API.md section 7).
 *
 * A store of key -> term shared by every context and by Erlang. Keys are
 * byte strings (the UTF-8 of a name); a value is either an integer that
 * fits 64 bits, kept as such so that incr/decr are cheap, or the ETF of
 * any other term (tag first, no version byte), kept in an immutable,
 * reference-counted block. No Python object is shared.
 *
 * The pyx_state_* functions below take no GIL, call no Python and never
 * call back into Go; any thread may call them. Each op is atomic: the
 * store is striped, one pthread mutex per stripe, held only for the hash
 * table's pointer work (never while a value is encoded, decoded or
 * copied; pyx_state_keys copies the keys, one stripe at a time). */
#ifndef PYX_STORE_H
#define PYX_STORE_H

#include <stddef.h>

/* An ETF value: immutable once made, freed by its last release. */
typedef struct {
    long refs; /* atomic */
    size_t len;
    unsigned char *data; /* malloc'd, len bytes */
} pyx_state_val;

/* Results. */
enum {
    PYX_STATE_OK = 0,
    PYX_STATE_NOT_FOUND = 1,
    PYX_STATE_NOT_INTEGER = 2, /* incr/decr on a value that is no integer */
    PYX_STATE_OVERFLOW = 3,    /* incr/decr past 64 bits, or on a bigger integer */
    PYX_STATE_NOMEM = -1,
};

/* A value holding a copy of len bytes of etf; NULL when out of memory. */
pyx_state_val *pyx_state_val_copy(const void *etf, size_t len);
/* A value that takes data (malloc'd, len bytes): on failure data is freed. */
pyx_state_val *pyx_state_val_adopt(unsigned char *data, size_t len);
void pyx_state_val_release(pyx_state_val *v);

/* Stores key -> the term in v, taking v's reference (also on failure).
 * An integer term that fits 64 bits is stored as an integer. */
int pyx_state_put(const void *key, size_t klen, pyx_state_val *v);
/* Stores key -> the integer n. */
int pyx_state_put_int(const void *key, size_t klen, long long n);
/* Looks key up: OK with *val a new reference to the value (release it),
 * or with *val NULL and the integer in *n; else NOT_FOUND. */
int pyx_state_get(const void *key, size_t klen, pyx_state_val **val, long long *n);
/* Removes key: OK, or NOT_FOUND. */
int pyx_state_delete(const void *key, size_t klen);
/* Adds delta to the integer at key (a missing key counts as 0) and puts
 * the new value in *result: OK, NOT_INTEGER, OVERFLOW or NOMEM; the value
 * is unchanged unless OK. */
int pyx_state_incr(const void *key, size_t klen, long long delta, long long *result);
/* Removes every key. */
void pyx_state_clear(void);
/* Appends every key to out (malloc'd, *out NULL at first), each as its
 * length (4 bytes, native order) then its bytes; *len is the total size.
 * Returns the number of keys, or -1 when out of memory (*out freed). */
long pyx_state_keys(unsigned char **out, size_t *len);

/* Replaces the whole store, at once, with the entries in flat: each is
 * the key's length (4 bytes, native order), the key, the value's length
 * (4 bytes, native order) and the value's ETF (no version byte); a key
 * given twice keeps its last value. Records no mirror op. OK, NOMEM, or
 * NOT_FOUND when flat is malformed (the store is then unchanged). */
int pyx_state_load(const unsigned char *flat, size_t len);

/* Every mutation is mirrored (mirror.h) when the mirror is on. */

#endif
