/* etfw.h: the External Term Format's tags, and the one C writer of terms
 * that are not Python objects (replies, '$log', '$state', '$cb' ids...).
 * Each pyx_etf_* appends to a pyx_buf and returns 0, or -1 when out of
 * memory (the buffer may then hold part of the term). No GIL involved;
 * nothing here calls into Go. */
#ifndef PYX_ETFW_H
#define PYX_ETFW_H
#include <stddef.h>
#include <stdint.h>

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

/* The version byte that starts a whole term. */
int pyx_etf_version(pyx_buf *b);
/* A tuple's header; its arity elements follow. arity <= 255. */
int pyx_etf_tuple(pyx_buf *b, unsigned arity);
/* A list's header, its n elements then a tail (pyx_etf_nil) following. */
int pyx_etf_list(pyx_buf *b, uint32_t n);
int pyx_etf_nil(pyx_buf *b);
/* An atom of n <= 255 bytes of UTF-8; pyx_etf_atom for a C string. */
int pyx_etf_atom_n(pyx_buf *b, const char *name, size_t n);
int pyx_etf_atom(pyx_buf *b, const char *name);
/* A binary of n bytes (n < 4 GiB): its header, then the bytes. */
int pyx_etf_binary_head(pyx_buf *b, size_t n);
int pyx_etf_binary(pyx_buf *b, const void *p, size_t n);
/* An integer, in the shortest of SMALL_INTEGER, INTEGER and SMALL_BIG. */
int pyx_etf_int(pyx_buf *b, long long n);
#endif
