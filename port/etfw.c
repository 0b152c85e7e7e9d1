/* etfw.c: the ETF writer of etfw.h: tuples, lists, atoms, binaries and
 * integers appended to a pyx_buf. */
#include "etfw.h"

#include <string.h>

static int put(pyx_buf *b, const void *p, size_t n) { return pyx_buf_append(b, p, n); }

static int put_u32(pyx_buf *b, unsigned tag, uint32_t n)
{
    unsigned char h[5] = {(unsigned char)tag, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    return put(b, h, 5);
}

int pyx_etf_version(pyx_buf *b)
{
    unsigned char v = ETF_VERSION;
    return put(b, &v, 1);
}

int pyx_etf_tuple(pyx_buf *b, unsigned arity)
{
    unsigned char h[2] = {SMALL_TUPLE_EXT, (unsigned char)arity};
    return put(b, h, 2);
}

int pyx_etf_list(pyx_buf *b, uint32_t n) { return put_u32(b, LIST_EXT, n); }

int pyx_etf_nil(pyx_buf *b)
{
    unsigned char t = NIL_EXT;
    return put(b, &t, 1);
}

int pyx_etf_atom_n(pyx_buf *b, const char *name, size_t n)
{
    unsigned char h[2] = {SMALL_ATOM_UTF8_EXT, (unsigned char)n};
    return put(b, h, 2) < 0 || put(b, name, n) < 0 ? -1 : 0;
}

int pyx_etf_atom(pyx_buf *b, const char *name) { return pyx_etf_atom_n(b, name, strlen(name)); }

int pyx_etf_binary_head(pyx_buf *b, size_t n) { return put_u32(b, BINARY_EXT, (uint32_t)n); }

int pyx_etf_binary(pyx_buf *b, const void *p, size_t n)
{
    return pyx_etf_binary_head(b, n) < 0 || put(b, p, n) < 0 ? -1 : 0;
}

int pyx_etf_int(pyx_buf *b, long long n)
{
    if (n >= 0 && n <= 255) {
        unsigned char t[2] = {SMALL_INTEGER_EXT, (unsigned char)n};
        return put(b, t, 2);
    }
    if (n >= INT32_MIN && n <= INT32_MAX)
        return put_u32(b, INTEGER_EXT, (uint32_t)n);
    unsigned char t[11] = {SMALL_BIG_EXT, 0, n < 0};
    size_t len = 3;
    for (uint64_t mag = n < 0 ? 0 - (uint64_t)n : (uint64_t)n; mag != 0; mag >>= 8)
        t[len++] = (unsigned char)mag;
    t[1] = (unsigned char)(len - 3);
    return put(b, t, len);
}
