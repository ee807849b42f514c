/* SPDX-License-Identifier: GPL-3.0-or-later */
/* What restic sees of an account's home while it reads it as root.
 *
 * restic walks a tree by path names: it lstat()s an entry, then opens it
 * by name. The account owns everything beneath its home, so between those
 * two steps it can replace a directory by a symbolic link to /etc, and
 * root's restic would read /etc/shadow into the account's snapshot (which
 * the account may then restore and read). Checking paths first only moves
 * the race.
 *
 * So the runner reads the home through a bind mount of it, in a mount
 * namespace of its own, mounted MS_NOSYMFOLLOW (Linux 5.10): no path
 * resolution inside it follows a symbolic link, whoever swaps what.
 * restic still records links as links (lstat and readlink work). The mount
 * is read-only too; it lives as long as the runner and its children. The
 * namespace is made a slave of the host's first, so nothing mounted here
 * propagates back.
 *
 * Binds, remounts and propagation changes ignore the source and the file
 * system type; they are given as "none" rather than NULL, which valgrind
 * reads as a string it cannot reach. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup-internal.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif

static int view_failed(jb_err *err, const char *home, int fd) {
        int e = errno;

        if (fd >= 0)
                close(fd);
        return jb_err_set(err, JB_E_INTERNAL, "a private view of %s: %s", home, strerror(e));
}

int backup_home_view(const char *home, jb_err *err) {
        char src[64];
        struct stat st;
        int fd;

        if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_SLAVE, NULL) < 0)
                return view_failed(err, home, -1);
        /* The home itself is named by root's passwd entry; opened (in the new
         * namespace: a bind source must be one of its mounts) without
         * following a final link, it is the directory that gets mounted. */
        fd = open(home, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return jb_err_set(err, errno == ENOENT ? JB_E_NOT_FOUND : JB_E_CONFLICT, "%s: %s", home,
                                  strerror(errno));
        if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
                close(fd);
                return jb_err_set(err, JB_E_CONFLICT, "%s is not a directory", home);
        }
        snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
        if (mount(src, home, "none", MS_BIND, NULL) < 0 ||
            mount("none", home, "none", MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOSYMFOLLOW,
                  NULL) < 0)
                return view_failed(err, home, fd);
        close(fd);
        return 0;
}
