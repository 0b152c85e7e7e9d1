/* alive.h: the pids that erlang.send knows alive (API.md section 6: a
 * send to a dead local process raises erlang.ProcessError). A pid not
 * known is asked about once, through the BEAM ($alive, erlang.py), which
 * then watches it (py_watch) and says when it exits ({down, _}, bridge):
 * so a send to a known pid costs a lookup here, not a round trip. One
 * table per sidecar process, shared by its executors and threads: under
 * a mutex, no GIL needed; nothing here calls into Go. */
#ifndef PYX_ALIVE_H
#define PYX_ALIVE_H
#include <stddef.h>
#include <stdint.h>

/* Pids kept at most; past it the table starts again empty. */
#define PYX_ALIVE_MAX 65536

/* Whether the pid whose ETF (no version byte) is pid[0..len) is known
 * alive. *epoch is set to the count of exits heard so far, for
 * pyx_alive_add. */
int pyx_alive_known(const void *pid, size_t len, uint64_t *epoch);
/* The count of exits heard so far (as pyx_alive_known sets it), without
 * the lock: a pid known alive when it was this still is while it stays. */
uint64_t pyx_alive_epoch(void);
/* The BEAM said the pid is alive (or of another node), when the count of
 * exits was epoch: kept, unless an exit came since (which may be its own:
 * then it is asked about again next time). 0, or -1 out of memory. */
int pyx_alive_add(const void *pid, size_t len, uint64_t epoch);
/* The pid exited: forgotten. */
void pyx_alive_forget(const void *pid, size_t len);
/* How many pids are kept. */
size_t pyx_alive_count(void);
#endif
