/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Entering a module's AppArmor hat, once and for good. */

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/apparmor.h>

#include "hat.h"
#include "log.h"
#include "util.h"

static int random_token(unsigned long *ret) {
        unsigned long t = 0;

        /* Zero is not a token libapparmor accepts for the way back, and a
         * guessable one would make the hat a door: draw until nonzero. */
        do {
                if (getrandom(&t, sizeof t, 0) != (ssize_t) sizeof t)
                        return -errno;
        } while (t == 0);
        *ret = t;
        return 0;
}

static int enter_apparmor_hat(const char *hat, jb_err *err) {
        unsigned long token;
        int r;

        /* The fallback attr file belongs to whichever LSM is active: never
         * write to it unless AppArmor itself is. */
        if (aa_is_enabled() != 1)
                return jb_err_set(err, JB_E_SANDBOX_UNAVAILABLE, "AppArmor is not enabled in this kernel");
        r = random_token(&token);
        if (r < 0)
                return jb_err_set(err, JB_E_SANDBOX_UNAVAILABLE, "no randomness for the hat token: %s", strerror(-r));
        r = aa_change_hat(hat, token);
        /* Nothing may ever find the token again, not even a core dump. */
        explicit_bzero(&token, sizeof token);
        if (r < 0)
                return jb_err_set(err, JB_E_SANDBOX_UNAVAILABLE, "cannot enter hat ^%s: %s", hat, strerror(errno));
        return 0;
}

int hat_enter(const char *hat, apparmor_mode mode, char *desc, size_t desc_size, jb_err *err) {
        bool in_hat = false;

        if (hat && mode != APPARMOR_OFF) {
                jb_err e = JB_ERR_INIT;
                if (enter_apparmor_hat(hat, &e) == 0)
                        in_hat = true;
                else if (mode == APPARMOR_ENFORCE) {
                        *err = e;
                        return -1;
                } else
                        log_warning("%s; continuing unconfined (apparmor.mode = complain)", e.msg);
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return jb_err_set(err, JB_E_SANDBOX_UNAVAILABLE, "cannot set no_new_privs: %s", strerror(errno));
        snprintf(desc, desc_size, "%s", in_hat ? "apparmor+nnp" : "nnp");
        return 0;
}
