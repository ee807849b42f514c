/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Symlink-safe file operations beneath a root directory (see <jabali/fs.h>).
 *
 * Internally every helper returns a descriptor or a negative errno and the
 * public functions turn that into a jb_err once, with fs_errno(), so that a
 * given kernel answer always maps to the same code. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1   /* O_PATH, O_TMPFILE, strerrordesc_np */
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <jabali/error.h>
#include <jabali/fs.h>

#include "fs-internal.h"
#include "util.h"

/* openat2 answers EAGAIN when a rename raced with ".." handling; the path
 * was valid, so try again, but not forever. */
#define OPENAT2_RETRIES 16
/* A temporary name is ".<name>.jb-XXXXXX": 11 bytes more than the name. */
#define TMP_EXTRA 11
#define TMP_TRIES 16
#define TREE_DEPTH_MAX 128
#define TREE_PASSES 4

static bool force_fallback;
static const char *test_tmp_suffix;

void jb_fs_test_force_fallback(bool on) {
        __atomic_store_n(&force_fallback, on, __ATOMIC_RELAXED);
}

void jb_fs_test_set_tmp_suffix(const char *suffix) {
        test_tmp_suffix = suffix;
}

static const char *errno_text(int e) {
        const char *s = strerrordesc_np(e);
        return s ? s : "unknown error";
}

/* The one place where an errno from a resolution or an operation on relpath
 * becomes a jb_err. */
static int fs_errno(jb_err *err, const char *relpath, int e) {
        switch (e) {
        case ELOOP:
                return jb_err_set(err, JB_E_INVALID_PARAMS, "%s: path crosses a symbolic link", relpath);
        case EXDEV:
                return jb_err_set(err, JB_E_INVALID_PARAMS, "%s: path escapes the root directory", relpath);
        case ENOENT:
                return jb_err_set(err, JB_E_NOT_FOUND, "%s: no such file or directory", relpath);
        case ENOTDIR:
                return jb_err_set(err, JB_E_CONFLICT, "%s: not a directory, or a parent of it is not", relpath);
        case EISDIR:
                return jb_err_set(err, JB_E_CONFLICT, "%s: is a directory", relpath);
        case EEXIST:
                return jb_err_set(err, JB_E_ALREADY_EXISTS, "%s: already exists", relpath);
        default:
                return jb_err_set(err, JB_E_INTERNAL, "%s: %s", relpath, errno_text(e));
        }
}

static int check_root(int root_fd, jb_err *err) {
        /* A negative fd would be AT_FDCWD (-100) to openat: the cwd, not a root. */
        if (root_fd < 0)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "invalid root directory descriptor");
        return 0;
}

/* Refuses what could name something outside the root before the kernel sees
 * it, so that the openat2 and the fallback paths accept exactly the same
 * paths (openat2 alone would accept "a/../b"). */
static int check_relpath(const char *relpath, jb_err *err) {
        if (!relpath || relpath[0] == '\0')
                return jb_err_set(err, JB_E_INVALID_PARAMS, "path is empty");
        if (strnlen(relpath, PATH_MAX) >= PATH_MAX)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "%.64s...: path is too long", relpath);
        if (relpath[0] == '/')
                return jb_err_set(err, JB_E_INVALID_PARAMS, "%s: path is absolute", relpath);

        for (const char *p = relpath;; ) {
                size_t l = strcspn(p, "/");

                if (l == 0)
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "%s: path has an empty component", relpath);
                if (l > NAME_MAX)
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "%s: path component is too long", relpath);
                if (l == 1 && p[0] == '.')
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "%s: path has a \".\" component", relpath);
                if (l == 2 && p[0] == '.' && p[1] == '.')
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "%s: path escapes the root directory",
                                          relpath);
                if (p[l] == '\0')
                        return 0;
                p += l + 1;
        }
}

/* The walk used when openat2 is missing: one openat(O_PATH|O_NOFOLLOW) per
 * directory component, each checked to be a directory with fstat (not with
 * O_DIRECTORY, which would answer ENOTDIR for a symlink and hide it); the
 * last component is opened with the caller's flags (O_NOFOLLOW included).
 * relpath has passed check_relpath(). Returns an fd or -errno. */
static int open_walk(int root_fd, const char *relpath, int flags, mode_t mode) {
        _cleanup_close_ int dir_fd = -1;
        int cur = root_fd;      /* borrowed, or dir_fd */
        char name[NAME_MAX + 1];
        const char *p = relpath;

        for (;;) {
                size_t l = strcspn(p, "/");
                struct stat st;
                int fd;

                memcpy(name, p, l);
                name[l] = '\0';
                if (p[l] == '\0')
                        break;

                fd = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                if (fstat(fd, &st) < 0) {
                        int e = errno;
                        close(fd);
                        return -e;
                }
                if (!S_ISDIR(st.st_mode)) {
                        close(fd);
                        return S_ISLNK(st.st_mode) ? -ELOOP : -ENOTDIR;
                }
                safe_close(dir_fd);
                dir_fd = cur = fd;
                p += l + 1;
        }

        int fd = openat(cur, name, flags, mode);
        return fd < 0 ? -errno : fd;
}

/* Opens relpath (already checked) beneath root_fd. Returns an fd or -errno:
 * -EXDEV for an escape, -ELOOP for any symlink on the way, including a
 * final one (also when O_DIRECTORY made the kernel say ENOTDIR). */
static int open_beneath_raw(int root_fd, const char *relpath, int flags, mode_t mode) {
        int fd = -ENOSYS;

        /* openat2 refuses O_PATH with anything but O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC. */
        flags |= O_NOFOLLOW | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY);

        if (!__atomic_load_n(&force_fallback, __ATOMIC_RELAXED)) {
                bool creates = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
                struct open_how how = {
                        .flags = (uint64_t) (unsigned) flags,
                        /* openat2 refuses a mode without O_CREAT, or above 07777 */
                        .mode = creates ? (uint64_t) (mode & 07777) : 0,
                        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
                };

                for (unsigned i = 0; i < OPENAT2_RETRIES; i++) {
                        long r = syscall(SYS_openat2, root_fd, relpath, &how, sizeof how);
                        if (r >= 0)
                                return (int) r;
                        fd = -errno;
                        if (fd != -EAGAIN)
                                break;
                }
        }
        if (fd == -ENOSYS)
                fd = open_walk(root_fd, relpath, flags, mode);

        if (fd == -ENOTDIR && (flags & O_DIRECTORY)) {
                /* O_DIRECTORY|O_NOFOLLOW on a final symlink says ENOTDIR;
                 * report it as the symlink it is. */
                int probe = open_beneath_raw(root_fd, relpath, O_PATH, 0);
                if (probe >= 0) {
                        struct stat st;
                        if (fstat(probe, &st) == 0 && S_ISLNK(st.st_mode))
                                fd = -ELOOP;
                        close(probe);
                }
        }
        return fd;
}

/* Opens the directory holding relpath's last component with `flags`
 * (O_PATH, or O_RDONLY when it must be fsynced); *ret_name points into
 * relpath. Returns an fd or -errno. */
static int open_parent(int root_fd, const char *relpath, int flags, const char **ret_name) {
        const char *slash = strrchr(relpath, '/');
        char dir[PATH_MAX];
        int fd;

        flags |= O_DIRECTORY | O_CLOEXEC;
        if (!slash) {
                *ret_name = relpath;
                fd = openat(root_fd, ".", flags);
                return fd < 0 ? -errno : fd;
        }

        /* check_relpath() bounded relpath below PATH_MAX. */
        memcpy(dir, relpath, (size_t) (slash - relpath));
        dir[slash - relpath] = '\0';
        *ret_name = slash + 1;
        return open_beneath_raw(root_fd, dir, flags, 0);
}

JB_EXPORT int jb_fs_open_root(const char *path, jb_err *err) {
        if (!path || path[0] != '/')
                return jb_err_set(err, JB_E_INVALID_PARAMS, "root directory must be an absolute path");

        int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                int e = errno;
                if (e == ENOTDIR)
                        return jb_err_set(err, JB_E_CONFLICT, "%s: not a directory", path);
                return fs_errno(err, path, e);
        }
        return fd;
}

JB_EXPORT int jb_fs_open(int root_fd, const char *relpath, int flags, mode_t mode, jb_err *err) {
        if (check_root(root_fd, err) < 0 || check_relpath(relpath, err) < 0)
                return -1;

        int fd = open_beneath_raw(root_fd, relpath, flags, mode);
        if (fd < 0)
                return fs_errno(err, relpath, -fd);

        if (flags & O_PATH) {
                /* O_PATH|O_NOFOLLOW hands out the symlink itself. */
                struct stat st;
                if (fstat(fd, &st) < 0) {
                        int e = errno;
                        close(fd);
                        return fs_errno(err, relpath, e);
                }
                if (S_ISLNK(st.st_mode)) {
                        close(fd);
                        return fs_errno(err, relpath, ELOOP);
                }
        }
        return fd;
}

/* The error for a component of mkdir -p: names the path up to it. */
static int mkdir_errno(jb_err *err, const char *relpath, size_t upto, int e) {
        char sub[PATH_MAX];

        memcpy(sub, relpath, upto);
        sub[upto] = '\0';
        return fs_errno(err, sub, e);
}

/* Makes `name` in dir_fd with exactly mode/owner. Returns an fd of the new
 * directory (O_PATH), -EEXIST when somebody else made the name first, or
 * another -errno. */
static int mkdir_one(int dir_fd, const char *name, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_close_ int fd = -1;

        /* 0700 until owner and mode are final: no window with a wrong owner. */
        if (mkdirat(dir_fd, name, 0700) < 0)
                return -errno;
        fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOTDIR ? -ELOOP : -errno;
        if ((uid != (uid_t) -1 || gid != (gid_t) -1) && fchown(fd, uid, gid) < 0)
                return -errno;
        if (fchmod(fd, mode) < 0)
                return -errno;
        return TAKE_FD(fd);
}

JB_EXPORT int jb_fs_mkdir_p(int root_fd, const char *relpath, mode_t mode, uid_t uid, gid_t gid, jb_err *err) {
        _cleanup_close_ int dir_fd = -1;
        int cur = root_fd;      /* borrowed, or dir_fd */
        char name[NAME_MAX + 1];
        const char *p;
        int created = 0;

        if (check_root(root_fd, err) < 0 || check_relpath(relpath, err) < 0)
                return -1;
        mode &= 07777;

        /* Always a walk, also with openat2: each step is relative to a
         * directory fd already checked, and O_NOFOLLOW refuses links. */
        for (p = relpath;; ) {
                size_t l = strcspn(p, "/");
                size_t upto = (size_t) (p - relpath) + l;
                int fd = -1;

                memcpy(name, p, l);
                name[l] = '\0';

                for (unsigned attempt = 0; fd < 0; attempt++) {
                        struct stat st;

                        fd = openat(cur, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                        if (fd >= 0) {
                                if (fstat(fd, &st) < 0) {
                                        int e = errno;
                                        close(fd);
                                        return mkdir_errno(err, relpath, upto, e);
                                }
                                if (!S_ISDIR(st.st_mode)) {
                                        close(fd);
                                        return mkdir_errno(err, relpath, upto,
                                                           S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR);
                                }
                                break;
                        }
                        if (errno != ENOENT)
                                return mkdir_errno(err, relpath, upto, errno);

                        fd = mkdir_one(cur, name, mode, uid, gid);
                        if (fd >= 0) {
                                created = 1;
                                break;
                        }
                        /* Lost a race with another creator: look again. */
                        if (fd != -EEXIST || attempt >= 3)
                                return mkdir_errno(err, relpath, upto, -fd);
                }

                safe_close(dir_fd);
                dir_fd = cur = fd;
                if (p[l] == '\0')
                        return created;
                p += l + 1;
        }
}

/* Opens `name` in dir_fd for reading if it is a regular file, without
 * following a symlink and without opening anything else (a device or FIFO
 * must never be opened: that can block or have side effects).
 * Returns an fd, or -ENOENT when missing, -ELOOP for a symlink, -EISDIR for
 * a directory, -EINVAL for another file type, another -errno on failure. */
static int open_regular_at(int dir_fd, const char *name, struct stat *ret_st) {
        struct stat before;
        int fd, tries = 0;

again:
        if (fstatat(dir_fd, name, &before, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (S_ISLNK(before.st_mode))
                return -ELOOP;
        if (S_ISDIR(before.st_mode))
                return -EISDIR;
        if (!S_ISREG(before.st_mode))
                return -EINVAL;

        /* O_NONBLOCK: should a FIFO be swapped in meanwhile, do not wait. */
        fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, ret_st) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        if (!S_ISREG(ret_st->st_mode) || ret_st->st_ino != before.st_ino ||
            ret_st->st_dev != before.st_dev) {
                close(fd);
                /* Another regular file renamed over the name between the
                 * two looks (jb_fs_write_atomic by a concurrent writer) is
                 * not a wrong type: look again. */
                if (S_ISREG(ret_st->st_mode) && ++tries < 8)
                        goto again;
                return -EINVAL;
        }
        return fd;
}

static int open_regular_errno(jb_err *err, const char *relpath, int e) {
        if (e == EINVAL)
                return jb_err_set(err, JB_E_CONFLICT, "%s: not a regular file", relpath);
        return fs_errno(err, relpath, e);
}

static bool fd_has_content(int fd, const uint8_t *data, size_t len) {
        uint8_t buf[16384];
        size_t off = 0;

        for (;;) {
                ssize_t n = pread(fd, buf, sizeof buf, (off_t) off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return false;
                }
                if (n == 0)
                        return off == len;
                if ((size_t) n > len - off || memcmp(buf, data + off, (size_t) n) != 0)
                        return false;
                off += (size_t) n;
        }
}

enum { EXISTING_SAME, EXISTING_FIXED, EXISTING_REWRITE };

/* Compares what is at dir_fd/name with the wanted state and fixes mode and
 * owner in place when only they differ. Returns EXISTING_* or -1. */
static int converge_existing(int dir_fd, const char *name, const char *relpath, const void *data,
                             size_t len, mode_t mode, uid_t uid, gid_t gid, jb_err *err) {
        _cleanup_close_ int fd = -1;
        struct stat st;

        fd = open_regular_at(dir_fd, name, &st);
        if (fd == -ENOENT)
                return EXISTING_REWRITE;
        if (fd < 0)
                return open_regular_errno(err, relpath, -fd);

        if ((uint64_t) st.st_size != (uint64_t) len || !fd_has_content(fd, data, len))
                return EXISTING_REWRITE;

        bool uid_ok = uid == (uid_t) -1 || st.st_uid == uid;
        bool gid_ok = gid == (gid_t) -1 || st.st_gid == gid;
        if (uid_ok && gid_ok && (st.st_mode & 07777) == mode)
                return EXISTING_SAME;

        /* fchmod on a file with other names would change them too (think of a
         * hard link a user planted): replace this name instead. */
        if (st.st_nlink > 1)
                return EXISTING_REWRITE;

        /* chown first: it may clear set-id bits that the chmod then sets. */
        if ((!uid_ok || !gid_ok) && fchown(fd, uid, gid) < 0)
                return fs_errno(err, relpath, errno);
        if (fchmod(fd, mode) < 0)
                return fs_errno(err, relpath, errno);
        return EXISTING_FIXED;
}

static int random_suffix(char *buf, size_t n) {
        static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        uint8_t rnd[16];

        if (n > sizeof rnd)
                return -EINVAL;
        if (getrandom(rnd, n, 0) != (ssize_t) n)
                return errno ? -errno : -EIO;
        for (size_t i = 0; i < n; i++)
                buf[i] = chars[rnd[i] % (sizeof chars - 1)];
        buf[n] = '\0';
        return 0;
}

static int write_all(int fd, const uint8_t *p, size_t len) {
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Writes a new file next to `name` and renames it over. */
static int replace_file(int dir_fd, const char *name, const char *relpath, const void *data,
                        size_t len, mode_t mode, uid_t uid, gid_t gid, jb_err *err) {
        char tmp[NAME_MAX + 1];
        _cleanup_close_ int fd = -1;
        int r;

        for (unsigned i = 0; i < TMP_TRIES; i++) {
                char suffix[7];

                r = random_suffix(suffix, 6);
                if (r < 0)
                        return jb_err_set(err, JB_E_INTERNAL, "%s: getrandom: %s", relpath, errno_text(-r));
                if (i == 0 && test_tmp_suffix)
                        snprintf(suffix, sizeof suffix, "%s", test_tmp_suffix);
                snprintf(tmp, sizeof tmp, ".%s.jb-%s", name, suffix);
                fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
                if (fd < 0 && errno != EEXIST)
                        break;
                if (fd < 0)
                        continue;
                /* The lock marks the temporary file as live for as long as
                 * this process has it open; jb_fs_clean_temps() removes only
                 * unlocked ones (left by a writer that was killed). If a
                 * cleaner got in between create and lock, it has unlinked
                 * the name: start over with a fresh one. */
                struct stat st;
                if (flock(fd, LOCK_EX) == 0 && fstat(fd, &st) == 0 && st.st_nlink > 0)
                        break;
                fd = safe_close(fd);
                errno = EEXIST;
        }
        if (fd < 0)
                return jb_err_set(err, JB_E_INTERNAL, "%s: cannot create a temporary file: %s",
                                  relpath, errno_text(errno));

        r = write_all(fd, data, len);
        if (r == 0 && (uid != (uid_t) -1 || gid != (gid_t) -1) && fchown(fd, uid, gid) < 0)
                r = -errno;
        if (r == 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dir_fd, tmp, 0);
                return fs_errno(err, relpath, -r);
        }

        /* The rename is only durable once the directory is; EINVAL: this
         * file system cannot sync directories. */
        if (fsync(dir_fd) < 0 && errno != EINVAL)
                return fs_errno(err, relpath, errno);
        return 0;
}

JB_EXPORT int jb_fs_write_atomic(int root_fd, const char *relpath, const void *data, size_t len, mode_t mode,
                       uid_t uid, gid_t gid, jb_err *err) {
        _cleanup_close_ int dir_fd = -1;
        const char *name;
        int r;

        if (check_root(root_fd, err) < 0 || check_relpath(relpath, err) < 0)
                return -1;
        if (!data && len > 0)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "%s: no data", relpath);
        mode &= 07777;

        /* O_RDONLY, not O_PATH: the directory is fsynced after the rename. */
        dir_fd = open_parent(root_fd, relpath, O_RDONLY, &name);
        if (dir_fd < 0)
                return fs_errno(err, relpath, -dir_fd);
        if (strlen(name) > NAME_MAX - TMP_EXTRA)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "%s: file name is too long", relpath);

        r = converge_existing(dir_fd, name, relpath, data, len, mode, uid, gid, err);
        if (r < 0)
                return -1;
        if (r == EXISTING_SAME)
                return 0;
        if (r == EXISTING_FIXED)
                return 1;

        if (replace_file(dir_fd, name, relpath, data, len, mode, uid, gid, err) < 0)
                return -1;
        return 1;
}

JB_EXPORT int jb_fs_read(int root_fd, const char *relpath, size_t max_size, char **ret, size_t *ret_len,
                         jb_err *err) {
        _cleanup_close_ int dir_fd = -1, fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t cap, n = 0;
        const char *name;
        struct stat st;

        if (!ret)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "no result pointer");
        *ret = NULL;
        if (check_root(root_fd, err) < 0 || check_relpath(relpath, err) < 0)
                return -1;
        /* Reading max_size + 1 bytes detects an over-long file. */
        if (max_size > (size_t) SSIZE_MAX - 1)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "size limit too large");

        dir_fd = open_parent(root_fd, relpath, O_PATH, &name);
        if (dir_fd < 0)
                return fs_errno(err, relpath, -dir_fd);
        fd = open_regular_at(dir_fd, name, &st);
        if (fd < 0)
                return open_regular_errno(err, relpath, -fd);
        if ((uint64_t) st.st_size > (uint64_t) max_size)
                return jb_err_set(err, JB_E_CONFLICT, "%s: file is larger than %zu bytes", relpath, max_size);

        /* The size may change while reading: st_size is a hint only. */
        cap = (size_t) st.st_size + 1;
        buf = malloc(cap + 1);
        if (!buf)
                return jb_err_set(err, JB_E_INTERNAL, "%s: out of memory", relpath);

        for (;;) {
                ssize_t k;

                if (n == cap) {
                        size_t ncap = cap > (max_size + 1) / 2 ? max_size + 1 : cap * 2;
                        char *nbuf;

                        if (n > max_size)
                                return jb_err_set(err, JB_E_CONFLICT, "%s: file is larger than %zu bytes",
                                                  relpath, max_size);
                        nbuf = realloc(buf, ncap + 1);
                        if (!nbuf)
                                return jb_err_set(err, JB_E_INTERNAL, "%s: out of memory", relpath);
                        buf = nbuf;
                        cap = ncap;
                }
                k = read(fd, buf + n, cap - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return fs_errno(err, relpath, errno);
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        if (n > max_size)
                return jb_err_set(err, JB_E_CONFLICT, "%s: file is larger than %zu bytes", relpath, max_size);

        buf[n] = '\0';
        if (ret_len)
                *ret_len = n;
        *ret = TAKE_PTR(buf);
        return 0;
}

JB_EXPORT int jb_fs_unlink(int root_fd, const char *relpath, jb_err *err) {
        _cleanup_close_ int dir_fd = -1;
        const char *name;

        if (check_root(root_fd, err) < 0 || check_relpath(relpath, err) < 0)
                return -1;

        dir_fd = open_parent(root_fd, relpath, O_PATH, &name);
        if (dir_fd == -ENOENT)
                return 0;
        if (dir_fd < 0)
                return fs_errno(err, relpath, -dir_fd);

        if (unlinkat(dir_fd, name, 0) == 0)
                return 1;
        if (errno == ENOENT)
                return 0;
        return fs_errno(err, relpath, errno);
}

static int remove_dir_at(int parent_fd, const char *name, dev_t dev, unsigned depth,
                         const char *relpath, jb_err *err);

/* Removes one entry of a directory being emptied. */
static int remove_entry(int dir_fd, const char *name, dev_t dev, unsigned depth,
                        const char *relpath, jb_err *err) {
        for (unsigned attempt = 0; attempt < TREE_PASSES; attempt++) {
                if (unlinkat(dir_fd, name, 0) == 0 || errno == ENOENT)
                        return 0;
                if (errno != EISDIR)
                        return jb_err_set(err, JB_E_INTERNAL, "%s: cannot remove \"%s\": %s",
                                          relpath, name, errno_text(errno));

                int r = remove_dir_at(dir_fd, name, dev, depth + 1, relpath, err);
                if (r != -ENOTDIR)
                        return r < 0 ? -1 : 0;
                /* Replaced by a non-directory meanwhile: unlink that. */
        }
        return jb_err_set(err, JB_E_CONFLICT, "%s: \"%s\" keeps changing", relpath, name);
}

/* Empties and removes the directory parent_fd/name, never leaving `dev`.
 * Returns 0, -ENOTDIR when name is no longer a directory (nothing set in
 * err), or -1 with err set. */
static int remove_dir_at(int parent_fd, const char *name, dev_t dev, unsigned depth,
                         const char *relpath, jb_err *err) {
        if (depth > TREE_DEPTH_MAX)
                return jb_err_set(err, JB_E_CONFLICT, "%s: tree is deeper than %d levels",
                                  relpath, TREE_DEPTH_MAX);

        for (unsigned pass = 0; pass < TREE_PASSES; pass++) {
                struct stat st;
                struct dirent *de;
                DIR *d;
                int fd;

                fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                        if (errno == ENOENT)
                                return 0;
                        if (errno == ENOTDIR || errno == ELOOP)
                                return -ENOTDIR;
                        return jb_err_set(err, JB_E_INTERNAL, "%s: cannot open \"%s\": %s",
                                          relpath, name, errno_text(errno));
                }
                if (fstat(fd, &st) < 0) {
                        int e = errno;
                        close(fd);
                        return jb_err_set(err, JB_E_INTERNAL, "%s: \"%s\": %s", relpath, name, errno_text(e));
                }
                if (st.st_dev != dev) {
                        close(fd);
                        return jb_err_set(err, JB_E_CONFLICT, "%s: \"%s\" is on another file system",
                                          relpath, name);
                }
                d = fdopendir(fd);      /* owns fd from here */
                if (!d) {
                        close(fd);
                        return jb_err_set(err, JB_E_INTERNAL, "%s: %s", relpath, errno_text(errno));
                }

                for (;;) {
                        errno = 0;
                        de = readdir(d);
                        if (!de)
                                break;
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        if (remove_entry(dirfd(d), de->d_name, dev, depth, relpath, err) < 0) {
                                closedir(d);
                                return -1;
                        }
                }
                if (errno != 0) {
                        int e = errno;
                        closedir(d);
                        return jb_err_set(err, JB_E_INTERNAL, "%s: reading \"%s\": %s",
                                          relpath, name, errno_text(e));
                }
                closedir(d);

                if (unlinkat(parent_fd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
                        return 0;
                if (errno == ENOTDIR)
                        return -ENOTDIR;
                if (errno != ENOTEMPTY && errno != EEXIST)
                        return jb_err_set(err, JB_E_INTERNAL, "%s: cannot remove \"%s\": %s",
                                          relpath, name, errno_text(errno));
                /* Something was added meanwhile: another pass. */
        }
        return jb_err_set(err, JB_E_CONFLICT, "%s: \"%s\" keeps being refilled", relpath, name);
}

JB_EXPORT int jb_fs_remove_tree(int root_fd, const char *relpath, jb_err *err) {
        _cleanup_close_ int dir_fd = -1;
        const char *name;
        struct stat pst, st;

        if (check_root(root_fd, err) < 0 || check_relpath(relpath, err) < 0)
                return -1;

        dir_fd = open_parent(root_fd, relpath, O_PATH, &name);
        if (dir_fd == -ENOENT)
                return 0;
        if (dir_fd < 0)
                return fs_errno(err, relpath, -dir_fd);
        if (fstat(dir_fd, &pst) < 0)
                return fs_errno(err, relpath, errno);

        for (unsigned attempt = 0; attempt < TREE_PASSES; attempt++) {
                int r;

                if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                return 0;
                        return fs_errno(err, relpath, errno);
                }
                if (!S_ISDIR(st.st_mode)) {
                        if (unlinkat(dir_fd, name, 0) == 0)
                                return 1;
                        if (errno == ENOENT)
                                return 0;
                        if (errno == EISDIR)
                                continue;
                        return fs_errno(err, relpath, errno);
                }

                if (st.st_dev != pst.st_dev)
                        return jb_err_set(err, JB_E_CONFLICT, "%s: is a mount point", relpath);
                r = remove_dir_at(dir_fd, name, pst.st_dev, 1, relpath, err);
                if (r == 0)
                        return 1;
                if (r != -ENOTDIR)
                        return -1;
        }
        return jb_err_set(err, JB_E_CONFLICT, "%s: keeps changing", relpath);
}

JB_EXPORT int jb_fs_kind_of(int root_fd, const char *relpath, jb_err *err) {
        _cleanup_close_ int dir_fd = -1;
        const char *name;
        struct stat st;

        if (check_root(root_fd, err) < 0 || check_relpath(relpath, err) < 0)
                return -1;

        dir_fd = open_parent(root_fd, relpath, O_PATH, &name);
        if (dir_fd == -ENOENT)
                return JB_FS_MISSING;
        if (dir_fd < 0)
                return fs_errno(err, relpath, -dir_fd);

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return JB_FS_MISSING;
                return fs_errno(err, relpath, errno);
        }
        if (S_ISREG(st.st_mode))
                return JB_FS_FILE;
        if (S_ISDIR(st.st_mode))
                return JB_FS_DIR;
        if (S_ISLNK(st.st_mode))
                return JB_FS_SYMLINK;
        return JB_FS_OTHER;
}

/* Is `n` one of our temporary names: ".<name>.jb-XXXXXX"? */
static bool is_temp_name(const char *n) {
        size_t len = strlen(n);

        return len > 11 && n[0] == '.' && memcmp(n + len - 10, ".jb-", 4) == 0;
}

JB_EXPORT int jb_fs_clean_temps(int root_fd, const char *reldir, jb_err *err) {
        _cleanup_close_ int dir_fd = -1;
        DIR *d;
        struct dirent *de;
        int removed = 0;

        if (check_root(root_fd, err) < 0)
                return -1;
        if (!reldir || streq(reldir, ".") || reldir[0] == '\0')
                dir_fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        else {
                if (check_relpath(reldir, err) < 0)
                        return -1;
                dir_fd = jb_fs_open(root_fd, reldir, O_RDONLY | O_DIRECTORY, 0, err);
                if (dir_fd < 0)
                        return -1;
        }
        if (dir_fd < 0)
                return fs_errno(err, reldir ? reldir : ".", errno);
        d = fdopendir(dir_fd);
        if (!d)
                return fs_errno(err, reldir ? reldir : ".", errno);
        dir_fd = -1;            /* owned by d now */
        while ((de = readdir(d))) {
                _cleanup_close_ int fd = -1;

                if (!is_temp_name(de->d_name))
                        continue;
                fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                if (fd < 0)
                        continue;
                /* Locked: a live writer's. Unlocked: its writer is gone. */
                if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) == 0)
                        removed++;
        }
        closedir(d);
        return removed;
}
