/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Running restic: argv only, the scrubbed environment of jb_spawn plus
 * what restic needs to find the repository, its password and its cache.
 * restic 0.14 answers most failures with exit status 1 and a fixed
 * sentence on stderr; those sentences are mapped to stable codes here. */

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "backup-internal.h"

#define ARGS_MAX 32

int backup_restic_run_input(const backup_cfg *c, const backup_dest *d, const char *const *args, const void *in,
                            size_t len, uint64_t timeout_ms, jb_spawn_result *r, jb_err *err) {
        char repo[BACKUP_REPO_MAX + 32], pw[PATH_MAX + 32], cache[PATH_MAX + 32];
        const char *argv[ARGS_MAX + 4], *env[] = { repo, pw, cache, NULL };
        size_t n = 0, i = 0;
        jb_spawn_opts o = { .argv = argv, .env = env, .timeout_ms = timeout_ms, .max_output = BACKUP_OUTPUT_MAX,
                            .stdin_data = in, .stdin_len = len };
        int ret;

        argv[n++] = c->restic;
        if (d->option[0]) {
                argv[n++] = "-o";
                argv[n++] = d->option;
        }
        for (; args[i]; i++) {
                if (i >= ARGS_MAX)
                        return jb_err_set(err, JB_E_INTERNAL, "too many restic arguments");
                argv[n++] = args[i];
        }
        argv[n] = NULL;
        if ((size_t) snprintf(repo, sizeof repo, "RESTIC_REPOSITORY=%s", d->repository) >= sizeof repo ||
            (size_t) snprintf(pw, sizeof pw, "RESTIC_PASSWORD_FILE=%s", d->password_file) >= sizeof pw ||
            (size_t) snprintf(cache, sizeof cache, "RESTIC_CACHE_DIR=%s", c->cache_dir) >= sizeof cache)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "a restic path is too long");
        ret = jb_spawn_run(&o, r, err);
        explicit_bzero(repo, sizeof repo);
        if (ret == 0)
                backup_remote_scrub(d, r);
        return ret;
}

int backup_restic_run(const backup_cfg *c, const backup_dest *d, const char *const *args, uint64_t timeout_ms,
                      jb_spawn_result *r, jb_err *err) {
        return backup_restic_run_input(c, d, args, NULL, 0, timeout_ms, r, err);
}

int backup_restic_err(const jb_spawn_result *r, jb_err *err) {
        const char *e = r->stderr_data ? r->stderr_data : "";

        if (r->timed_out || r->exit_code != 1)
                return jb_spawn_result_to_err(r, err);
        if (strstr(e, "wrong password or no key found"))
                return jb_err_set_code(err, BACKUP_E_WRONG_PASSWORD,
                                       "the password does not open the repository");
        if (strstr(e, "repository is already locked"))
                return jb_err_set_code(err, BACKUP_E_LOCKED,
                                       "the repository is locked by another restic (restic unlock removes a stale lock)");
        if (strstr(e, "unable to open config file") && strstr(e, "no such file or directory"))
                return jb_err_set(err, JB_E_NOT_FOUND, "there is no repository at the destination");
        if (backup_remote_err(e, err) < 0)
                return -1;
        return jb_spawn_result_to_err(r, err);
}
