/* SPDX-License-Identifier: GPL-3.0-or-later */
/* One domain's files — sites-available/<d>.conf and its sites-enabled
 * link — saved before a change and put back exactly when nginx refuses
 * the result. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <jabali/fs.h>

#include "nginx-internal.h"

int ngx_fileset_save(int avail_fd, int enabled_fd, const char *domain, ngx_fileset *fs, jb_err *err) {
        ssize_t n;

        memset(fs, 0, sizeof *fs);
        if (snprintf(fs->name, sizeof fs->name, "%s.conf", domain) >= (int) sizeof fs->name)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "domain is too long");
        if (jb_fs_read(avail_fd, fs->name, NGX_FILE_MAX, &fs->avail, &fs->avail_len, err) < 0) {
                if (jb_code_from_name(err->code) != JB_E_NOT_FOUND)
                        return -1;
                jb_err_clear(err);
        }
        fs->link_kind = jb_fs_kind_of(enabled_fd, fs->name, err);
        if (fs->link_kind < 0)
                goto fail;
        if (fs->link_kind == JB_FS_SYMLINK) {
                /* The name is one checked segment: readlinkat reads the
                 * link itself, never follows it. */
                n = readlinkat(enabled_fd, fs->name, fs->link_target, sizeof fs->link_target - 1);
                if (n < 0) {
                        jb_err_set(err, JB_E_INTERNAL, "sites-enabled/%s: %m", fs->name);
                        goto fail;
                }
                fs->link_target[n] = '\0';
        } else if (fs->link_kind == JB_FS_FILE) {
                if (jb_fs_read(enabled_fd, fs->name, NGX_FILE_MAX, &fs->enabled, &fs->enabled_len, err) < 0)
                        goto fail;
        } else if (fs->link_kind != JB_FS_MISSING) {
                jb_err_set(err, JB_E_CONFLICT, "sites-enabled/%s is neither a file nor a link", fs->name);
                goto fail;
        }
        return 0;
fail:
        ngx_fileset_free(fs);
        return -1;
}

void ngx_fileset_free(ngx_fileset *fs) {
        free(fs->avail);
        free(fs->enabled);
        fs->avail = fs->enabled = NULL;
}

bool ngx_fileset_enabled_ok(const ngx_fileset *fs, const char *target) {
        return fs->link_kind == JB_FS_SYMLINK && strcmp(fs->link_target, target) == 0;
}

int ngx_enable(int enabled_fd, const char *name, const char *target, jb_err *err) {
        char tmp[300];
        uint64_t rnd = 0;

        if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t) sizeof rnd)
                return jb_err_set(err, JB_E_INTERNAL, "getrandom: %m");
        snprintf(tmp, sizeof tmp, ".%.200s.jb-%016llx", name, (unsigned long long) rnd);
        /* A new link under a fresh name, renamed over the old one: the
         * directory always holds the old or the new link. */
        if (symlinkat(target, enabled_fd, tmp) < 0)
                return jb_err_set(err, JB_E_INTERNAL, "sites-enabled/%s: symlink: %m", name);
        if (renameat(enabled_fd, tmp, enabled_fd, name) < 0) {
                int e = errno;
                (void) unlinkat(enabled_fd, tmp, 0);
                errno = e;
                return jb_err_set(err, e == EISDIR ? JB_E_CONFLICT : JB_E_INTERNAL, "sites-enabled/%s: %m", name);
        }
        return 1;
}

int ngx_fileset_restore(int avail_fd, int enabled_fd, const ngx_fileset *fs, jb_err *err) {
        int r = 0;

        if (fs->avail) {
                if (jb_fs_write_atomic(avail_fd, fs->name, fs->avail, fs->avail_len, 0644, 0, 0, err) < 0)
                        r = -1;
        } else if (jb_fs_unlink(avail_fd, fs->name, err) < 0)
                r = -1;

        switch (fs->link_kind) {
        case JB_FS_SYMLINK:
                if (ngx_enable(enabled_fd, fs->name, fs->link_target, r < 0 ? NULL : err) < 0)
                        r = -1;
                break;
        case JB_FS_FILE:
                /* Enabling put a symlink where the admin's file was, and an
                 * atomic write refuses to replace a symlink: remove it first. */
                if (jb_fs_kind_of(enabled_fd, fs->name, NULL) == JB_FS_SYMLINK)
                        (void) jb_fs_unlink(enabled_fd, fs->name, NULL);
                if (jb_fs_write_atomic(enabled_fd, fs->name, fs->enabled, fs->enabled_len, 0644, 0, 0,
                                       r < 0 ? NULL : err) < 0)
                        r = -1;
                break;
        default:
                if (jb_fs_unlink(enabled_fd, fs->name, r < 0 ? NULL : err) < 0)
                        r = -1;
                break;
        }
        return r;
}
