/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_CALL_INTERNAL_H
#define JABALI_CALL_INTERNAL_H

/* The layout behind the opaque jb_call. Shared by libjabali (the accessors)
 * and the worker (which fills it); both come from the same build, so this
 * is not part of the module ABI. Modules see only <jabali/call.h>. */

#include <jabali/call.h>

struct jb_call {
        const char *module;             /* borrowed */
        const char *action;             /* borrowed */
        const char *request_id;         /* borrowed */
        json_object *params;            /* borrowed, never NULL */
        json_object *settings;          /* borrowed, never NULL */
        bool dry_run;
        uint64_t deadline_usec;
        json_object *result;            /* owned, created on demand */
        bool changed;
        jb_err err;                     /* first failure */
        /* Asks the master for a reload (set by the worker; see reload.h). */
        int (*reload)(jb_call *call, const char *unit, unsigned flags, jb_err *err);
};

#endif
