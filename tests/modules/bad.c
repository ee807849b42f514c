/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Modules the loader must refuse, one per -D switch (built several times by
 * Makefile.am). Each is otherwise a valid module, so the refusal the tests
 * see is the one the switch provokes. */

#include <jabali/module.h>

#ifndef BAD_NAME
#error "build with -DBAD_NAME=\"...\" and one BAD_* switch"
#endif

static int noop(jb_call *call) {
        (void) call;
        return 0;
}

#ifdef BAD_INIT_FAILS
static int init_fails(json_object *settings, jb_err *err) {
        (void) settings;
        return jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "refusing on purpose");
}
#endif

static const jb_action actions[] = {
        { .name = BAD_NAME ".noop", .handler = noop, .summary = "does nothing" },
#ifdef BAD_DUPLICATE_ACTION
        { .name = BAD_NAME ".noop", .handler = noop, .summary = "registered twice" },
#endif
        { .name = NULL }
};

#ifdef BAD_ABI
/* Hand-rolled so the ABI number can be wrong. */
JB_EXPORT extern const jb_module jabali_module;
JB_EXPORT const jb_module jabali_module = {
        .magic = JABALI_MODULE_MAGIC, .abi = JABALI_MODULE_ABI + 1, .struct_size = sizeof(jb_module),
        .name = BAD_NAME, .version = "1.0.0", .actions = actions,
};
#else
/* Chosen out here: a directive inside a macro's arguments is undefined
 * behaviour in ISO C (C11 6.10.3p11), and cppcheck refuses it. */
#ifdef BAD_WRONG_NAME
#define MODULE_NAME "somebody_else"
#else
#define MODULE_NAME BAD_NAME
#endif
#ifdef BAD_INIT_FAILS
#define MODULE_INIT init_fails
#else
#define MODULE_INIT NULL
#endif

JABALI_MODULE(.name = MODULE_NAME, .version = "1.0.0", .hat = BAD_NAME,
              .summary = "a module the loader refuses", .actions = actions, .init = MODULE_INIT);
#endif
