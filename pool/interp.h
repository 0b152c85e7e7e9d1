/* interp.h: the main interpreter, executors (a thread state on a locked OS
 * thread) and contexts (a __main__ namespace): their life (interp.c).
 * Running requests in them: run.h. Nothing here calls into Go. */
#ifndef PYX_INTERP_H
#define PYX_INTERP_H

#include "ctx.h"

int pyx_mode(void);
const char *pyx_version(void);
/* Initialises the main interpreter on the calling thread, then releases
 * the GIL. paths: sys.path entries joined by '\n' (may be empty). Returns
 * NULL on success, else a malloc'd message. */
char *pyx_init_main(const char *paths, const char *executable);
/* Creates an executor on the calling thread, which must stay the same OS
 * thread for the executor's whole life: a new own-GIL sub-interpreter
 * when own_interp, else a thread state in the main interpreter. Returns
 * with no GIL held; NULL and *err (malloc'd) on failure. */
pyx_exec *pyx_exec_new(int own_interp, const char *paths, char **err);
/* Creates context number id in ex; on ex's thread. */
pyx_ctx *pyx_ctx_new(pyx_exec *ex, long long id, char **err);
/* Frees a context; on its executor's thread. */
void pyx_ctx_free(pyx_ctx *ctx);
#endif
