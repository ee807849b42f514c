/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Secrets by reference: a request names a file of secrets_dir
 * (password_ref, credentials_ref), never carries the secret itself. The
 * module hands restic the path; it reads the password itself, so the
 * secret is in no request, argv, environment value, log or audit record.
 *
 * The file and its directory must be root's and closed to everyone else:
 * a file another account could read leaks the repository key, one it could
 * replace lets it choose the password of new repositories. Such a file is
 * refused (CONFLICT) rather than used. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jabali/fs.h>

#include "backup-internal.h"

static int check_dir(int dfd, const char *path, jb_err *err) {
        struct stat st;

        if (fstat(dfd, &st) < 0)
                return jb_err_set(err, JB_E_INTERNAL, "%s: %s", path, strerror(errno));
        if (st.st_uid != 0 || (st.st_mode & 022) != 0)
                return jb_err_set(err, JB_E_CONFLICT, "secrets_dir %s must be root's and writable by root only", path);
        return 0;
}

static int check_file(int fd, const char *ref, jb_err *err) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return jb_err_set(err, JB_E_INTERNAL, "secret %s: %s", ref, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return jb_err_set(err, JB_E_CONFLICT, "secret %s is not a regular file", ref);
        if (st.st_uid != 0)
                return jb_err_set(err, JB_E_CONFLICT, "secret %s is not owned by root", ref);
        if ((st.st_mode & 077) != 0)
                return jb_err_set(err, JB_E_CONFLICT, "secret %s is open to group or others (mode %04o)", ref,
                                  (unsigned) (st.st_mode & 07777));
        if (st.st_size == 0)
                return jb_err_set(err, JB_E_CONFLICT, "secret %s is empty", ref);
        return 0;
}

int backup_secret_path(const backup_cfg *c, const char *ref, char *out, size_t size, jb_err *err) {
        int dfd, fd = -1, r = -1;

        dfd = jb_fs_open_root(c->secrets_dir, err);
        if (dfd < 0)
                return -1;
        if (check_dir(dfd, c->secrets_dir, err) < 0)
                goto out;
        fd = jb_fs_open(dfd, ref, O_RDONLY | O_NONBLOCK, 0, err);
        if (fd < 0) {
                if (err && strcmp(err->code, jb_code_name(JB_E_INVALID_PARAMS)) == 0)
                        jb_err_set(err, JB_E_CONFLICT, "secret %s is a symbolic link", ref);
                goto out;
        }
        if (check_file(fd, ref, err) < 0)
                goto out;
        if ((size_t) snprintf(out, size, "%s/%s", c->secrets_dir, ref) >= size) {
                jb_err_set(err, JB_E_INVALID_PARAMS, "secret %s: the path is too long", ref);
                goto out;
        }
        r = 0;
out:
        if (fd >= 0)
                close(fd);
        close(dfd);
        return r;
}
