/* buf.h: a growable byte buffer. No GIL involved; nothing here calls into
 * Go. malloc'd (not PyMem): Go frees it with free() without holding any
 * GIL. */
#ifndef PYX_BUF_H
#define PYX_BUF_H
#include <stddef.h>

typedef struct {
    unsigned char *data;
    size_t len, cap;
} pyx_buf;

/* Makes room for extra more bytes. 0 on success, -1 (no exception set) when
 * out of memory. */
int pyx_buf_reserve(pyx_buf *b, size_t extra);
/* Appends n bytes; 0 or -1 (out of memory, no exception set). */
int pyx_buf_append(pyx_buf *b, const void *p, size_t n);
void pyx_buf_free(pyx_buf *b);
#endif
