/* log.h: '$log' packets, {Level, Ctx, Text} for the BEAM's logger
 * (docs/PROTOCOL.md, "Log packets"): the one builder of them. Any thread,
 * no GIL needed; nothing here calls into Go. */
#ifndef PYX_LOG_H
#define PYX_LOG_H
#include <stddef.h>

#include "buf.h"
#include "output.h"

/* Ctx values that are no context: the atom undefined (a thread of an
 * interpreter with no context) and the atom sidecar (pyport itself). */
#define PYX_LOG_NO_CTX 0
#define PYX_LOG_SIDECAR (-1)

/* Builds the packet, the versioned '$log' then the versioned body, and
 * sends it on o. level: an atom's name. Ctx: the integer ctx when > 0,
 * else as PYX_LOG_NO_CTX or PYX_LOG_SIDECAR say. -1 out of memory
 * (nothing sent). */
int pyx_out_log(pyx_out *o, const char *level, long long ctx, const void *text, size_t n);
#endif
