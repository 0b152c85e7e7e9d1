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

/* A slot for the flow control of log.c (PYX_OUT_EXT_LOG): a pointer,
 * NULL until set, freed with o by pyx_out_free (free(3)). Read and set it
 * atomically. */
enum { PYX_OUT_EXT_LOG = 0, PYX_OUT_EXTS = 1 };
void **pyx_out_ext(pyx_out *o, int which);

/* erlang.send (docs/PROTOCOL.md, "One-way traffic"): one-way, but it must
 * stay before any later frame, its request's reply above all, so it stays
 * in-band, bounded by credits. entry is {Dest, Message}'s ETF without
 * version byte. It goes into o's batch of sends, and the batch goes out
 * as one frame '$send' + [Entry] at once when fewer than
 * PYX_SEND_WINDOW batches are out unacknowledged, else when an ack comes
 * (pyx_out_send_ack), and before any other frame (so nothing written
 * after a send overtakes it). A batch holds PYX_SEND_BATCH entries at
 * most: with it full and no credit, the caller waits (no GIL: the caller
 * drops it), up to 5 ms at a time, asking stop() whether to give up; so
 * does a sender past the pace (below). 0 when the entry is in, -1 when
 * stop() said so (stop may be NULL). */
#define PYX_SEND_WINDOW 4
#define PYX_SEND_BATCH 64
int pyx_out_send_oneway(pyx_out *o, const void *entry, size_t len, int (*stop)(void));
/* The port owner handled n '$send' packets ({send_ack, N}): the batch
 * waiting, if any, goes out, and waiting senders go on. */
void pyx_out_send_ack(pyx_out *o, long long n);

/* The share of sends (docs/PROTOCOL.md, "One-way traffic"): while another
 * thread is served (it wrote a frame with pyx_out_send, a reply above all,
 * in the last PYX_SEND_SHARE_NS), sends are paced to per_second, counted
 * over intervals of PYX_SEND_PACE_NS (or of one send, below 500 a second):
 * the send past an interval's count goes out as ever, then its sender
 * waits for the interval's end, without mu, asking stop() as the credit
 * wait does. Nothing is held back or lost, and a send loop that nobody
 * else's traffic meets runs at full speed. 0: never paced. The default is
 * PYX_SEND_PACE_DEFAULT. Any thread, any time. */
#define PYX_SEND_SHARE_NS 1000000LL
#define PYX_SEND_PACE_NS 2000000LL
#define PYX_SEND_PACE_DEFAULT 16000
void pyx_out_set_send_pace(pyx_out *o, long long per_second);
/* Sends after which their sender waited for the pace, so far. */
unsigned long long pyx_out_send_paced(pyx_out *o);
#endif
