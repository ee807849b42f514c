/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Finding a template: an administrator's copy first, then the shipped one
 * (see <jabali/template.h>). */

#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/template.h>

/* 1 and the text when dir/name exists, 0 when it (or dir) does not, -1 on
 * any other error. */
static int try_read(const char *dir, const char *name, size_t max, char **ret, size_t *ret_len, jb_err *err) {
        int fd, r;

        fd = jb_fs_open_root(dir, err);
        if (fd < 0)
                goto missing;
        r = jb_fs_read(fd, name, max, ret, ret_len, err);
        close(fd);
        if (r == 0)
                return 1;
missing:
        if (jb_code_from_name(err->code) != JB_E_NOT_FOUND)
                return -1;
        jb_err_clear(err);
        return 0;
}

JB_EXPORT int jb_template_load(const char *override_dir, const char *dir, const char *name, size_t max,
                               char **ret, size_t *ret_len, jb_err *err) {
        jb_err local = JB_ERR_INIT;
        int r;

        *ret = NULL;
        if (!err)
                err = &local;
        if (override_dir) {
                r = try_read(override_dir, name, max, ret, ret_len, err);
                if (r != 0)
                        return r < 0 ? -1 : 0;
        }
        r = try_read(dir, name, max, ret, ret_len, err);
        if (r < 0)
                return -1;
        if (r == 0)
                return jb_err_set(err, JB_E_INTERNAL, "template %s not found in %s", name, dir);
        return 0;
}
