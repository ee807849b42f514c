/* SPDX-License-Identifier: GPL-3.0-or-later */
/* nginx.cache.purge: the per-domain cache directory is swapped for an
 * empty one in one rename, then the old tree is removed at leisure. nginx
 * sees either the full cache or an empty one, never a half-removed tree. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <string.h>
#include <stdio.h>
#include <sys/random.h>
#include <unistd.h>

#include <jabali/fs.h>

#include "nginx-internal.h"

/* 1 when the directory holds anything, 0 when it is empty, -1 on error. */
static int has_entries(int root_fd, const char *name, jb_err *err) {
        struct dirent *de;
        DIR *d;
        int fd, r = 0;

        fd = jb_fs_open(root_fd, name, O_RDONLY | O_DIRECTORY, 0, err);
        if (fd < 0)
                return -1;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return jb_err_set(err, JB_E_INTERNAL, "%s: %m", name);
        }
        while (r == 0 && (de = readdir(d)))
                r = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
        closedir(d);
        return r;
}

int ngx_cache_purge(jb_call *call) {
        ngx_cfg c;
        const char *domain = jb_param_str(call, "domain", NULL);
        jb_err err = JB_ERR_INIT;
        struct passwd pw, *res = NULL;
        char buf[4096], old[320];
        uid_t uid = 0;
        gid_t gid = 0;
        uint64_t rnd = 0;
        int fd, kind, r = -1;

        ngx_cfg_load(call, &c);
        json_object_object_add(jb_call_result(call), "domain", json_object_new_string(domain));
        fd = jb_fs_open_root(c.cache_dir, &err);
        if (fd < 0) {
                if (jb_code_from_name(err.code) != JB_E_NOT_FOUND)
                        return jb_call_fail_err(call, &err);
                return 0;                       /* no cache at all: nothing to purge */
        }
        kind = jb_fs_kind_of(fd, domain, &err);
        if (kind < 0)
                goto out;
        if (kind == JB_FS_MISSING) {
                r = 0;
                goto out;
        }
        if (kind != JB_FS_DIR) {
                jb_err_set(&err, JB_E_CONFLICT, "%s/%s is not a directory", c.cache_dir, domain);
                goto out;
        }
        r = has_entries(fd, domain, &err);
        if (r <= 0)
                goto out;               /* already empty: nothing to do */
        r = -1;
        if (jb_call_dry_run(call)) {
                r = 1;
                goto out;
        }
        if (c.cache_user && getpwnam_r(c.cache_user, &pw, buf, sizeof buf, &res) == 0 && res) {
                uid = pw.pw_uid;
                gid = pw.pw_gid;
        }
        if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd) {
                jb_err_set(&err, JB_E_INTERNAL, "getrandom: %m");
                goto out;
        }
        snprintf(old, sizeof old, ".purge-%s-%016llx", domain, (unsigned long long) rnd);
        /* Both names are single checked segments beneath the cache root;
         * renameat never follows the last component. */
        if (renameat(fd, domain, fd, old) < 0) {
                jb_err_set(&err, JB_E_INTERNAL, "%s/%s: rename: %m", c.cache_dir, domain);
                goto out;
        }
        if (jb_fs_mkdir_p(fd, domain, 0700, uid, gid, &err) < 0)
                goto out;
        if (jb_fs_remove_tree(fd, old, &err) < 0)
                goto out;
        r = 1;
out:
        close(fd);
        if (r < 0)
                return jb_call_fail_err(call, &err);
        jb_call_set_changed(call, r > 0);
        return 0;
}
