/* atoms.h: the sidecar's count of the new atoms Python makes (atoms.c).
 *
 * The BEAM makes at most max_atoms new atoms for Python over the VM's life
 * (erlang/src/py_atoms.erl: that count is the guarantee). This is the
 * sidecar's own view of it, so that erlang.Atom(name) raises at the source
 * (erlang.AtomLimitError) instead of a reply failing later: a set of the
 * names taken as existing, shared by every context and thread of this
 * process, behind a mutex; a name not in it costs one of the budget,
 * max_atoms minus what the BEAM had made when this sidecar started
 * (atoms_load). It is conservative: a name that existed in the BEAM
 * already, but that no one told this sidecar about, counts too. No Python
 * or Go is called; any thread, GIL held or not. */
#ifndef PYX_ATOMS_H
#define PYX_ATOMS_H

#include <stddef.h>

/* The cap, --max-atoms (default 10000). */
void pyx_atoms_set_max(long long max);
long long pyx_atoms_max(void);
/* What the BEAM made so far (atoms_load): the count starts there. */
void pyx_atoms_set_spent(long long spent);
long long pyx_atoms_spent(void);
/* Adds a name that costs nothing (one the BEAM has): 0, or -1 out of memory. */
int pyx_atoms_known(const char *name, size_t n);
/* Whether Python may make the atom name (n bytes of UTF-8): 1 when it is
 * known, or new and within the budget (it is counted and known from then
 * on); 0 when it is new and the budget is spent; -1 out of memory. */
int pyx_atoms_admit(const char *name, size_t n);

/* Past the budget, a name may be one the BEAM has (no one told this
 * sidecar): erlang.Atom asks the BEAM (a callback, $atom_exists), for at
 * most n distinct names at once (default 1000), a bucket that fills again
 * at per_s a second (default 100): a loop of new names costs at most that many round trips
 * a second once it is empty. */
void pyx_atoms_set_asks(long long n, long long per_s);
/* Whether to ask about name: 2 ask (one ask is taken); 1 known, no need;
 * 0 do not (asked before and absent, or no asks left). */
int pyx_atoms_ask_begin(const char *name, size_t n);
/* The BEAM's answer: an existing name is known from then on (free), an
 * absent one is not asked again. 0, or -1 out of memory. */
int pyx_atoms_ask_end(const char *name, size_t n, int exists);

#endif
