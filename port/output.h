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
/* The first write error (an errno), or 0. */
int pyx_out_error(pyx_out *o);

/* A pre-frame hook: called under o's mutex before every frame o writes
 * (and at pyx_out_kick), it may put frames of its own first with
 * pyx_out_put, so that nothing written after an event overtakes the
 * frame that reports it (the shared state's mirror, store/mirror.h). It
 * must not call pyx_out_send or pyx_out_kick. */
typedef void (*pyx_out_hook)(pyx_out *o);
/* Sets o's hook (NULL: none). Atomic: any thread, at any time. */
void pyx_out_set_hook(pyx_out *o, pyx_out_hook hook);
/* From a hook only (o's mutex held): adds one frame, as pyx_out_send. */
void pyx_out_put(pyx_out *o, const void *a, size_t alen, const void *b, size_t blen);
/* Runs the hook now, and writes what is buffered unless a sender that
 * will is on its way. */
void pyx_out_kick(pyx_out *o);

/* Slots for the one-way flow control of log.c (PYX_OUT_EXT_LOG) and of
 * erlang.send (PYX_OUT_EXT_SEND): a pointer each, NULL until set, freed
 * with o by pyx_out_free (free(3)). Read and set them atomically. */
enum { PYX_OUT_EXT_LOG = 0, PYX_OUT_EXT_SEND = 1, PYX_OUT_EXTS = 2 };
void **pyx_out_ext(pyx_out *o, int which);
#endif
