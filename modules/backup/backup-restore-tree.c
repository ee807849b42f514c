/* SPDX-License-Identifier: GPL-3.0-or-later */
/* What backup.restore does to a tree restic restored, by descriptor only.
 *
 * restic wrote the tree as root into a directory only root can enter, so
 * until the tree is handed over nobody else can touch it; the account may
 * change everything else in its home meanwhile. Every name is therefore
 * opened relative to a directory descriptor, one component at a time,
 * never following a symbolic link (O_NOFOLLOW, openat2 RESOLVE_NO_SYMLINKS),
 * and a directory of the home is written into only when it is the
 * account's own and on the home's file system.
 *
 * Tidying: device nodes are removed (as root restic recreates them, and an
 * account-owned /dev/sda would be the whole disk); everything else becomes
 * the account's (fchownat AT_SYMLINK_NOFOLLOW, which also drops set-id
 * bits and file capabilities).
 *
 * Placing (in_place): each entry moves into the same place of the home by
 * rename, so a file is replaced atomically, and a directory missing in the
 * home arrives whole. An existing directory is descended into; a symbolic
 * link, or anything else that is not a directory, where the snapshot has a
 * directory is refused (listed), as is a directory where the snapshot has
 * a file: the restore never deletes what it does not replace. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backup-internal.h"

/* Deeper trees are refused: each level holds a descriptor. */
#define DEPTH_MAX 256
/* Entries listed in the record; the counts cover the rest. */
#define LIST_MAX 1000

void backup_restore_report_init(backup_restore_report *r) {
        r->restored = json_object_new_array();
        r->refused = json_object_new_array();
        r->n_restored = r->n_refused = 0;
}

void backup_restore_report_free(backup_restore_report *r) {
        json_object_put(r->restored);
        json_object_put(r->refused);
        r->restored = r->refused = NULL;
}

static void join(char *out, size_t size, const char *rel, const char *name) {
        if (rel[0])
                snprintf(out, size, "%s/%s", rel, name);
        else
                snprintf(out, size, "%s", name);
}

static void restored(backup_restore_report *r, const char *rel, const char *name) {
        char p[PATH_MAX];

        if (r->n_restored++ >= LIST_MAX)
                return;
        join(p, sizeof p, rel, name);
        json_object_array_add(r->restored, json_object_new_string(p));
}

void backup_restore_refused(backup_restore_report *r, const char *rel, const char *name, const char *why) {
        json_object *o;
        char p[PATH_MAX];

        if (r->n_refused++ >= LIST_MAX)
                return;
        join(p, sizeof p, rel, name);
        o = json_object_new_object();
        json_object_object_add(o, "path", json_object_new_string(p));
        json_object_object_add(o, "reason", json_object_new_string(why));
        json_object_array_add(r->refused, o);
}

static void free_names(char **names, size_t n);

/* The names of a directory, read before anything in it changes; NULL
 * when it cannot be read whole. */
static char **list_dir(int dfd, size_t *count) {
        char **names = calloc(1, sizeof *names);
        size_t n = 0, cap = 1;
        struct dirent *de;
        DIR *d;
        int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0 || !names || !(d = fdopendir(fd))) {
                if (fd >= 0)
                        close(fd);
                free(names);
                return NULL;
        }
        while ((de = readdir(d))) {
                char *name;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (n == cap) {
                        char **more = realloc(names, 2 * cap * sizeof *names);

                        if (!more)
                                goto fail;
                        names = more;
                        cap *= 2;
                }
                if (!(name = strdup(de->d_name)))
                        goto fail;
                names[n++] = name;
        }
        closedir(d);
        *count = n;
        return names;
fail:
        closedir(d);
        free_names(names, n);
        return NULL;
}

static void free_names(char **names, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

static int open_sub(int dfd, const char *name) {
        return openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static int tidy(int dfd, const char *rel, uid_t uid, gid_t gid, int depth, backup_restore_report *r) {
        char **names, sub[PATH_MAX];
        size_t n = 0;
        int rc = 0;

        if (depth > DEPTH_MAX) {
                errno = ELOOP;
                return -1;
        }
        if (!(names = list_dir(dfd, &n)))
                return -1;
        for (size_t i = 0; i < n && rc == 0; i++) {
                struct stat st;

                if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        rc = -1;
                        break;
                }
                if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
                        if (unlinkat(dfd, names[i], 0) < 0)
                                rc = -1;
                        backup_restore_refused(r, rel, names[i], "a device node");
                        continue;
                }
                if (S_ISDIR(st.st_mode)) {
                        int fd = open_sub(dfd, names[i]);

                        if (fd < 0) {
                                rc = -1;
                                break;
                        }
                        join(sub, sizeof sub, rel, names[i]);
                        rc = tidy(fd, sub, uid, gid, depth + 1, r);
                        close(fd);
                }
                if (rc == 0 && fchownat(dfd, names[i], uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                        rc = -1;
        }
        free_names(names, n);
        return rc;
}

int backup_restore_tidy(int dfd, uid_t uid, gid_t gid, backup_restore_report *r, jb_err *err) {
        if (tidy(dfd, "", uid, gid, 0, r) < 0 || fchown(dfd, uid, gid) < 0)
                return jb_err_set(err, JB_E_INTERNAL, "handing the restored tree over: %s", strerror(errno));
        return 0;
}

/* A directory of the home, one component beneath dfd: never through a
 * symbolic link or a mount point, and only when it is the account's. */
static int open_home_dir(int dfd, const char *name, const struct stat *home, uid_t uid, const char **why) {
        struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
                                           RESOLVE_NO_XDEV };
        struct stat st;
        long fd;

        do
                fd = syscall(SYS_openat2, dfd, name, &how, sizeof how);
        while (fd < 0 && errno == EAGAIN);
        /* Without openat2 (a kernel before 5.6, valgrind 3.19): name is one
         * component, so O_NOFOLLOW is all RESOLVE_BENEATH and NO_SYMLINKS
         * add, and the st_dev check below is NO_XDEV's. O_DIRECTORY makes
         * a final link ENOTDIR; lstat tells it apart. */
        if (fd < 0 && errno == ENOSYS) {
                fd = openat(dfd, name, (int) how.flags);
                if (fd < 0 && errno == ENOTDIR && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISLNK(st.st_mode))
                        errno = ELOOP;
        }
        if (fd < 0) {
                *why = errno == ELOOP ? "a symbolic link is in the way" : "the directory could not be opened";
                return -1;
        }
        if (fstat((int) fd, &st) < 0 || st.st_dev != home->st_dev || st.st_uid != uid) {
                close((int) fd);
                *why = "a directory that is not the account's is in the way";
                return -1;
        }
        return (int) fd;
}

typedef struct place_ctx {
        backup_job *job;
        const struct stat *home;
        uid_t uid;
        backup_restore_report *r;
} place_ctx;

static void place_dir(place_ctx *c, int src, int dst, const char *rel, int depth);

static int refuse(place_ctx *c, const char *rel, const char *name, const char *why) {
        backup_restore_refused(c->r, rel, name, why);
        return -1;
}

/* One entry of src into dst. */
static int place_one(place_ctx *c, int src, int dst, const char *rel, const char *name, int depth) {
        struct stat s, d;
        const char *why = NULL;
        char sub[PATH_MAX];
        int have, sfd, dfd;

        if (fstatat(src, name, &s, AT_SYMLINK_NOFOLLOW) < 0)
                return refuse(c, rel, name, "vanished from the staging tree");
        have = fstatat(dst, name, &d, AT_SYMLINK_NOFOLLOW) == 0;
        if (!S_ISDIR(s.st_mode)) {
                if (have && S_ISDIR(d.st_mode))
                        return refuse(c, rel, name, "a directory is in the way");
                if (renameat2(src, name, dst, name, 0) < 0)
                        return refuse(c, rel, name, strerror(errno));
                restored(c->r, rel, name);
                return 0;
        }
        if (!have) {
                if (renameat2(src, name, dst, name, RENAME_NOREPLACE) < 0)
                        return refuse(c, rel, name, strerror(errno));
                restored(c->r, rel, name);
                return 0;
        }
        if (S_ISLNK(d.st_mode))
                return refuse(c, rel, name, "a symbolic link is in the way");
        if (!S_ISDIR(d.st_mode))
                return refuse(c, rel, name, "a file is in the way");
        if (depth >= DEPTH_MAX)
                return refuse(c, rel, name, "too deep");
        if ((dfd = open_home_dir(dst, name, c->home, c->uid, &why)) < 0)
                return refuse(c, rel, name, why);
        if ((sfd = open_sub(src, name)) < 0) {
                close(dfd);
                return refuse(c, rel, name, "vanished from the staging tree");
        }
        join(sub, sizeof sub, rel, name);
        place_dir(c, sfd, dfd, sub, depth + 1);
        /* The directory as the snapshot has it, once its entries are in. */
        (void) fchmod(dfd, s.st_mode & 07777);
        (void) futimens(dfd, (const struct timespec[2]) { s.st_atim, s.st_mtim });
        close(sfd);
        close(dfd);
        return 0;
}

static void place_dir(place_ctx *c, int src, int dst, const char *rel, int depth) {
        size_t n = 0;
        char **names = list_dir(src, &n);

        if (!names) {
                backup_restore_refused(c->r, rel, ".", "the staging directory could not be read");
                return;
        }
        for (size_t i = 0; i < n && !backup_job_cancelled(c->job); i++)
                (void) place_one(c, src, dst, rel, names[i], depth);
        free_names(names, n);
}

void backup_restore_place(backup_job *j, int src, int home, uid_t uid, backup_restore_report *r) {
        struct stat st;
        place_ctx c = { .job = j, .home = &st, .uid = uid, .r = r };

        if (fstat(home, &st) < 0) {
                backup_restore_refused(r, "", ".", "the home could not be read");
                return;
        }
        place_dir(&c, src, home, "", 0);
}
