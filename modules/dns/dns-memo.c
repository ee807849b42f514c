/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The memo of converged zones: after the module has made (or found) a
 * zone equal to a desired state in pdns, it keeps that state's text in
 * <state_dir>/<zone>. An upsert whose desired state equals a memo younger
 * than verify_after_s answers changed:false without asking pdns: reading a
 * zone through the API costs about as much as writing it, and the panel's
 * reconciler repeats every zone every minute. Every verify_after_s (and
 * whenever the caller asks, or the state differs) the zone is read and
 * diffed again, which also repairs changes made behind the module's back.
 *
 * The memo is removed before any write to the zone and written again only
 * after every write succeeded, so a failure or a kill in between leaves no
 * memo and the next upsert reads pdns. The master serialises the requests
 * of one zone, and workers share the directory. Memo trouble never fails a
 * request: without a memo the module reads pdns. */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jabali/fs.h>

#include "dns-module.h"

#define MEMO_MAX (64u << 20)

static int open_dir(const dns_cfg *c) {
        if (c->verify_after_s <= 0 || !c->state_dir[0])
                return -1;
        return jb_fs_open_root(c->state_dir, NULL);
}

bool dns_memo_fresh(const dns_cfg *c, const char *zone, const char *text) {
        int dir = open_dir(c), fd;
        size_t len = strlen(text);
        struct stat st;
        char *buf = NULL;
        bool fresh = false;
        time_t now = time(NULL);

        if (dir < 0)
                return false;
        fd = jb_fs_open(dir, zone, O_RDONLY | O_CLOEXEC, 0, NULL);
        close(dir);
        if (fd < 0)
                return false;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t) st.st_size == len && len < MEMO_MAX &&
            st.st_mtime <= now + 5 && now - st.st_mtime < c->verify_after_s) {
                buf = malloc(len + 1);
                if (buf && read(fd, buf, len + 1) == (ssize_t) len)
                        fresh = memcmp(buf, text, len) == 0;
        }
        free(buf);
        close(fd);
        return fresh;
}

void dns_memo_write(const dns_cfg *c, const char *zone, const char *text) {
        int dir = open_dir(c);

        if (dir < 0)
                return;
        /* Unchanged bytes are not rewritten: the time stamp says when the
         * zone was last found equal, so it is set either way. */
        if (jb_fs_write_atomic(dir, zone, text, strlen(text), 0600, 0, 0, NULL) == 0)
                (void) utimensat(dir, zone, NULL, AT_SYMLINK_NOFOLLOW);
        close(dir);
}

void dns_memo_forget(const dns_cfg *c, const char *zone) {
        int dir = c->state_dir[0] ? jb_fs_open_root(c->state_dir, NULL) : -1;

        if (dir < 0)
                return;
        (void) jb_fs_unlink(dir, zone, NULL);
        close(dir);
}

void dns_memo_init(const char *state_dir) {
        int fd;

        if (!state_dir[0] || (mkdir(state_dir, 0700) < 0 && errno != EEXIST))
                return;
        fd = jb_fs_open_root(state_dir, NULL);
        if (fd < 0)
                return;
        (void) jb_fs_clean_temps(fd, ".", NULL);
        close(fd);
}
