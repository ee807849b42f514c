/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_HAT_H
#define JABALI_HAT_H

/* Confinement of a worker: the only file that calls libapparmor.
 *
 * The worker enters its module's hat for good (design §2): aa_change_hat()
 * with a random nonzero 64-bit token that is wiped at once, then
 * PR_SET_NO_NEW_PRIVS, after which the kernel refuses every change_hat or
 * change_profile that is not a subset of the hat — back to the parent,
 * sideways into another module's hat, token or not — and from any program
 * the worker execs. The order is AppArmor, then no_new_privs, and it runs
 * while the worker is single-threaded (creds are per thread). */

#include <stdbool.h>
#include <stddef.h>

#include <jabali/error.h>

#include "config.h"

/* Enters `hat` (NULL: the module asks for none) according to `mode`, then
 * sets no_new_privs. Writes what is in force ("apparmor+nnp", "nnp") to
 * `desc`. In enforce mode a hat that cannot be entered (AppArmor absent,
 * no such hat, refused) is SANDBOX_UNAVAILABLE; complain/off log and go on. */
int hat_enter(const char *hat, apparmor_mode mode, char *desc, size_t desc_size, jb_err *err);

#endif
