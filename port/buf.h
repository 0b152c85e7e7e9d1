/* buf.h: a growable byte buffer. No GIL involved; nothing here calls into
 * Go. malloc'd (not PyMem): Go frees it with free() without holding any
 * GIL. */
#ifndef PYX_BUF_H
#define PYX_BUF_H
#include <stddef.h>
#include <string.h>

typedef struct {
    unsigned char *data;
    size_t len, cap;
} pyx_buf;

/* The slow path of pyx_buf_reserve: reallocates. */
int pyx_buf_grow(pyx_buf *b, size_t extra);

/* Makes room for extra more bytes. 0 on success, -1 (no exception set) when
 * out of memory. Inline: the writers of etfw.h call it for every few bytes
 * (the shared state's mirror, on every mutation). */
static inline int pyx_buf_reserve(pyx_buf *b, size_t extra)
{
    return extra <= b->cap - b->len ? 0 : pyx_buf_grow(b, extra);
}

/* Appends n bytes; 0 or -1 (out of memory, no exception set). */
static inline int pyx_buf_append(pyx_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (pyx_buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void pyx_buf_free(pyx_buf *b);
#endif
