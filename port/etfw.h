/* etfw.h: the External Term Format's tags, and the one C writer of terms
 * that are not Python objects (replies, '$log', '$state', '$cb' ids...).
 * Each pyx_etf_* appends to a pyx_buf and returns 0, or -1 when out of
 * memory (the buffer may then hold part of the term). No GIL involved;
 * nothing here calls into Go. Inline, as they write a few bytes each, on
 * hot paths (replies, the mirror's op on every mutation). */
#ifndef PYX_ETFW_H
#define PYX_ETFW_H
#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include "buf.h"

/* ETF tags (erts/emulator/beam/external.h). */
enum {
    ETF_VERSION = 131,
    NEW_FLOAT_EXT = 70,
    BIT_BINARY_EXT = 77,
    COMPRESSED = 80,
    NEW_PID_EXT = 88,
    NEW_PORT_EXT = 89,
    NEWER_REFERENCE_EXT = 90,
    SMALL_INTEGER_EXT = 97,
    INTEGER_EXT = 98,
    FLOAT_EXT = 99,
    ATOM_EXT = 100,
    REFERENCE_EXT = 101,
    PORT_EXT = 102,
    PID_EXT = 103,
    SMALL_TUPLE_EXT = 104,
    LARGE_TUPLE_EXT = 105,
    NIL_EXT = 106,
    STRING_EXT = 107,
    LIST_EXT = 108,
    BINARY_EXT = 109,
    SMALL_BIG_EXT = 110,
    LARGE_BIG_EXT = 111,
    NEW_FUN_EXT = 112,
    EXPORT_EXT = 113,
    NEW_REFERENCE_EXT = 114,
    SMALL_ATOM_EXT = 115,
    MAP_EXT = 116,
    ATOM_UTF8_EXT = 118,
    SMALL_ATOM_UTF8_EXT = 119,
    V4_PORT_EXT = 120,
};

/* Helpers of the writers below: n bytes, and a tag with a 32-bit count. */
static inline int pyx_etf_put_(pyx_buf *b, const void *p, size_t n)
{
    return pyx_buf_append(b, p, n);
}

static inline int pyx_etf_put_u32_(pyx_buf *b, unsigned tag, uint32_t n)
{
    unsigned char h[5] = {(unsigned char)tag, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    return pyx_etf_put_(b, h, 5);
}

/* The version byte that starts a whole term. */
static inline int pyx_etf_version(pyx_buf *b)
{
    unsigned char v = ETF_VERSION;
    return pyx_etf_put_(b, &v, 1);
}

/* A tuple's header; its arity elements follow. arity <= 255. */
static inline int pyx_etf_tuple(pyx_buf *b, unsigned arity)
{
    unsigned char h[2] = {SMALL_TUPLE_EXT, (unsigned char)arity};
    return pyx_etf_put_(b, h, 2);
}

/* A list's header, its n elements then a tail (pyx_etf_nil) following. */
static inline int pyx_etf_list(pyx_buf *b, uint32_t n)
{
    return pyx_etf_put_u32_(b, LIST_EXT, n);
}

static inline int pyx_etf_nil(pyx_buf *b)
{
    unsigned char t = NIL_EXT;
    return pyx_etf_put_(b, &t, 1);
}

/* An atom of n <= 255 bytes of UTF-8; pyx_etf_atom for a C string. */
static inline int pyx_etf_atom_n(pyx_buf *b, const char *name, size_t n)
{
    unsigned char h[2] = {SMALL_ATOM_UTF8_EXT, (unsigned char)n};
    return pyx_etf_put_(b, h, 2) < 0 || pyx_etf_put_(b, name, n) < 0 ? -1 : 0;
}

static inline int pyx_etf_atom(pyx_buf *b, const char *name)
{
    return pyx_etf_atom_n(b, name, strlen(name));
}

/* A binary of n bytes (n < 4 GiB): its header, then the bytes. */
static inline int pyx_etf_binary_head(pyx_buf *b, size_t n)
{
    return pyx_etf_put_u32_(b, BINARY_EXT, (uint32_t)n);
}

static inline int pyx_etf_binary(pyx_buf *b, const void *p, size_t n)
{
    return pyx_etf_binary_head(b, n) < 0 || pyx_etf_put_(b, p, n) < 0 ? -1 : 0;
}

/* An integer, in the shortest of SMALL_INTEGER, INTEGER and SMALL_BIG. */
static inline int pyx_etf_int(pyx_buf *b, long long n)
{
    if (n >= 0 && n <= 255) {
        unsigned char t[2] = {SMALL_INTEGER_EXT, (unsigned char)n};
        return pyx_etf_put_(b, t, 2);
    }
    if (n >= INT32_MIN && n <= INT32_MAX)
        return pyx_etf_put_u32_(b, INTEGER_EXT, (uint32_t)n);
    unsigned char t[11] = {SMALL_BIG_EXT, 0, n < 0};
    size_t len = 3;
    for (uint64_t mag = n < 0 ? 0 - (uint64_t)n : (uint64_t)n; mag != 0; mag >>= 8)
        t[len++] = (unsigned char)mag;
    t[1] = (unsigned char)(len - 3);
    return pyx_etf_put_(b, t, len);
}
#endif
