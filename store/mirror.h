/* mirror.h: the shared state's mirror (docs/PROTOCOL.md, "Shared state").
 * Once on, every mutation of the store appends an op, {set, Key, Value},
 * {delete, Key} or clear, to one buffer, in the order of the mutations of
 * each key (under its stripe mutex; lock order: stripe -> mirror). The
 * buffer goes out as one '$state' packet from the output's pre-frame hook
 * (port/output.h), so before any frame written after the mutations; and
 * on its own, when it grows large or after a short delay. No GIL; nothing
 * here calls into Go. */
#ifndef PYX_MIRROR_H
#define PYX_MIRROR_H
#include <stddef.h>

#include "output.h"
#include "store.h"

/* Sends the mirror on o from now on (on), or stops mirroring (and drops
 * what is buffered). One output at a time: on for o is off for the last. */
void pyx_mirror_to(pyx_out *o, int on);

/* From store.c. Records {set, Key, Value} (v's bytes, or the integer n)
 * or, with del, {delete, Key}: the key's stripe mutex held. Out of memory
 * loses the op (the mirror is then incomplete: nothing better to do). */
void pyx_mirror_op(int del, const void *key, size_t klen, const pyx_state_val *v, long long n);
/* Records clear: every stripe mutex held. */
void pyx_mirror_clear(void);
/* After a mutation, its stripe unlocked: a flush soon. */
void pyx_mirror_after(void);
#endif
