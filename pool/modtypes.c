/* modtypes.c: the term classes an `erlang` function converts with
 * (modtypes.h). */
#include "modtypes.h"

#include <string.h>

#include "current.h"

int pyx_module_types_get(PyObject *module, pyx_module_types *mt)
{
    memset(mt, 0, sizeof *mt);
    pyx_ctx *ctx = pyx_current_ctx();
    if (ctx != NULL) {
        mt->t = ctx->types; /* borrowed: the context owns them */
        return 0;
    }
    static const char *const names[5] = {"Pid", "Ref", "Opaque", "Atom", "PyBuffer"};
    for (int i = 0; i < 5; i++)
        if ((mt->held[i] = PyObject_GetAttrString(module, names[i])) == NULL)
            return -1;
    mt->t = (pyx_types){mt->held[0], mt->held[1], mt->held[2], mt->held[3], mt->held[4]};
    return 0;
}

void pyx_module_types_put(pyx_module_types *mt)
{
    for (int i = 0; i < 5; i++)
        Py_XDECREF(mt->held[i]);
}
