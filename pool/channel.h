/* channel.h: the sidecar's channels (docs/channels.md): one table per
 * pyport process, id -> a queue of messages that the BEAM sends
 * ({chan_send, Ch}) and any context's Python receives. Erlang counts what
 * it sent (atomics) and the receivers give it back with '$chan' packets
 * [{Ch, Count, Bytes}], batched, so that a full channel is `busy' in
 * Erlang without a round trip. Bounded: PYX_CHAN_MAX channels, each at
 * most its max bytes (Erlang's check), PYX_CHAN_FDS asyncio waiters. No
 * GIL involved but in the Python functions (channel.c says where); nothing
 * here calls into Go. */
#ifndef PYX_CHANNEL_H
#define PYX_CHANNEL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

#include "output.h"

#define PYX_CHAN_MAX 65536
#define PYX_CHAN_FDS 64
/* receive()s on executors that serve others while they wait, per channel */
#define PYX_CHAN_QS 64

/* Kinds: Erlang terms (each message a versioned term_to_binary), raw
 * bytes (py_byte_channel, py_buffer). */
enum { PYX_CHAN_TERM = 0, PYX_CHAN_BYTES = 1 };
/* pyx_chan_open's results. */
enum { PYX_CHAN_OK = 0, PYX_CHAN_EXISTS = -1, PYX_CHAN_TOO_MANY = -2, PYX_CHAN_NOMEM = -3 };

/* Opens channel id; its acknowledgements go to out, one at the latest
 * when the queue empties or when max/4 bytes were taken. Any thread. */
int pyx_chan_open(pyx_out *out, long long id, int kind, long long max);
/* Appends a copy of data[0..len) to channel id; dropped when the channel
 * is closed or unknown (1 then, else 0, -1 out of memory). Any thread. */
int pyx_chan_push(long long id, const void *data, size_t len);
/* Closes channel id: receivers take what is queued, then get
 * ChannelClosed; with drop, what is queued goes too. Any thread. */
void pyx_chan_close(long long id, int drop);
/* The channels in the table (open, or closed with messages left). */
int pyx_chan_count(void);
/* Adds the Python functions _chan_recv, _chan_try, _chan_watch,
 * _chan_unwatch, _chan_count to the erlang module. GIL held. */
int pyx_channel_add_functions(PyObject *module);
#endif
