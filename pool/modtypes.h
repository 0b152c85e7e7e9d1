/* modtypes.h: the term classes a function of the `erlang` module converts
 * with (modtypes.c). GIL held. */
#ifndef PYX_MODTYPES_H
#define PYX_MODTYPES_H

#include "pyetf.h"

/* The running request's context's classes, else (another Python thread)
 * the module's own, whose five strong references are then in held. */
typedef struct {
    pyx_types t;
    PyObject *held[5];
} pyx_module_types;

/* 0, or -1 with an exception set; call pyx_module_types_put either way. */
int pyx_module_types_get(PyObject *module, pyx_module_types *mt);
/* Releases what pyx_module_types_get holds. */
void pyx_module_types_put(pyx_module_types *mt);
#endif
