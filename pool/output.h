/* output.h: {packet, 4} frames written to a file descriptor by many
 * threads: the executors (in C, without entering Go) and Go. No GIL
 * involved; nothing here calls into Go. */
#ifndef PYX_OUTPUT_H
#define PYX_OUTPUT_H
#include <stddef.h>

typedef struct pyx_out pyx_out;

/* A writer on fd (left open by pyx_out_free), buffering up to cap bytes. */
pyx_out *pyx_out_new(int fd, size_t cap);
void pyx_out_free(pyx_out *o);
/* Writes one frame: a 4-byte big-endian length, then a, then b. Senders
 * that arrive while another one writes are batched: the last one out
 * flushes, so a burst costs one write(2). After a write error everything
 * is dropped (the reader is gone). Blocks while the pipe is full. */
void pyx_out_send(pyx_out *o, const void *a, size_t alen, const void *b, size_t blen);
/* Sends the shared state's mirror (state.h) on o from now on (on), or
 * stops mirroring (and drops what is buffered). One Output at a time. */
void pyx_out_mirror(pyx_out *o, int on);
/* Writes the pending mirror packet, if any, now. */
void pyx_out_mirror_flush(pyx_out *o);
/* From state.c after a mutation, its locks released, with the size of the
 * mirror buffer: flushes it when large, else arms the timed flush. */
void pyx_out_mirror_poke(size_t buffered);
/* The first write error (an errno), or 0. */
int pyx_out_error(pyx_out *o);
#endif
