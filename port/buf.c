/* buf.c: the growable byte buffer of buf.h, its out-of-line parts. */
#include "buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int pyx_buf_grow(pyx_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return -1;
    size_t want = b->len + extra;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    unsigned char *p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

void pyx_buf_free(pyx_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
