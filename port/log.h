/* log.h: '$log' packets for the BEAM's logger (docs/PROTOCOL.md, "Log
 * packets"): the one builder of them, and their flow control. Any thread,
 * no GIL needed; nothing here calls into Go.
 *
 * Log lines are one-way traffic that must not hold up replies: a flood of
 * them (a Python loop printing) would otherwise fill the pipe and the port
 * owner's mailbox ahead of every reply. So lines are batched, many to a
 * packet {Dropped, [{Level, Ctx, Caller, Text}]}, and at most
 * PYX_LOG_WINDOW packets are out unacknowledged: the BEAM's py_log process
 * acknowledges each once it has given its lines to the logger
 * ({log_ack, N}, pyx_out_log_ack). Lines that come meanwhile wait in the
 * next batch, up to PYX_LOG_BATCH bytes; beyond that they are dropped and
 * counted by level, as OTP's logger does under overload, and the counts
 * go with the next packet (Dropped: [{Level, N}]). */
#ifndef PYX_LOG_H
#define PYX_LOG_H
#include <stddef.h>

#include "buf.h"
#include "output.h"

/* Ctx values that are no context: the atom undefined (a thread of an
 * interpreter with no context) and the atom sidecar (pyport itself). */
#define PYX_LOG_NO_CTX 0
#define PYX_LOG_SIDECAR (-1)

/* Packets sent and not yet acknowledged, at most. */
#define PYX_LOG_WINDOW 2
/* The bytes of lines a batch waiting to be sent holds, at most (a single
 * entry larger than this goes alone). */
#define PYX_LOG_BATCH (8 * 1024)

/* Logs text[0..n) at level (an atom's name) for context ctx (> 0, else as
 * PYX_LOG_NO_CTX or PYX_LOG_SIDECAR say) and the calling process caller
 * (the ETF of a pid without version byte, clen bytes; NULL: none, the
 * atom undefined): sent at once when fewer than PYX_LOG_WINDOW packets
 * are out, else batched or, past PYX_LOG_BATCH, dropped and counted. 0, or
 * -1 out of memory (the line is lost). */
int pyx_out_log(pyx_out *o, const char *level, long long ctx, const void *caller, size_t clen, const void *text,
                size_t n);

/* The BEAM acknowledges n log packets: the batch waiting, if any (or the
 * counts of lines dropped), goes out. */
void pyx_out_log_ack(pyx_out *o, long long n);

/* Lines dropped so far on o, for tests. */
unsigned long long pyx_out_log_dropped(pyx_out *o);

#endif
