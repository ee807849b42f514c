/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_FS_H
#define JABALI_FS_H

/* Symlink-safe file operations beneath a root directory.
 *
 * A module never touches a host path by name. It opens the directory it
 * manages once (the path comes from its config, e.g. /etc/nginx) with
 * jb_fs_open_root() and from then on names files relative to that
 * descriptor. Every function here resolves the relative path so that it can
 * neither leave the root nor pass through a symbolic link, even while an
 * untrusted user (a site owner) is changing the tree at the same time: the
 * kernel's openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS) is used where available, otherwise a walk of one
 * openat(O_NOFOLLOW) per component.
 *
 * Relative paths ("relpath" below) must be non-empty, shorter than
 * PATH_MAX, not absolute, and made of components that are neither empty
 * ("a//b", a trailing "/"), "." nor "..", each at most NAME_MAX bytes. Such
 * a path is refused before anything is touched.
 *
 * Error codes, the same for every function:
 *   INVALID_PARAMS  relpath is malformed, escapes the root, or a component
 *                   of it is a symbolic link (the path "crosses a symlink");
 *                   also bad arguments (negative root fd, NULL pointers).
 *   NOT_FOUND       a component does not exist (where existence is needed).
 *   CONFLICT        the host has the wrong kind of object there: a
 *                   directory where a file is expected, a file where a
 *                   directory is expected, a device or FIFO, a file above a
 *                   size limit, a tree on another file system.
 *   ALREADY_EXISTS  jb_fs_open() with O_CREAT|O_EXCL and the name exists.
 *   INTERNAL        any other system error; the message carries strerror.
 * Messages start with the relpath ("sites/a.conf: ...").
 *
 * Ownership: descriptors returned are the caller's to close(); buffers
 * returned are the caller's to free(). The root fd is borrowed and never
 * closed by these functions. All descriptors are opened O_CLOEXEC.
 *
 * Every function is safe to call from several threads at once. */

#include <stddef.h>
#include <sys/types.h>

#include <jabali/error.h>
#include <jabali/visibility.h>

/* Opens the directory `path` (absolute; trusted, comes from configuration,
 * symlinks in it are followed) as O_PATH|O_DIRECTORY|O_CLOEXEC.
 *
 * Returns the descriptor (>= 0, the caller closes it), or -1: INVALID_PARAMS
 * when path is NULL or relative, NOT_FOUND when it does not exist, CONFLICT
 * when it is not a directory, INTERNAL otherwise. */
JB_EXPORT int jb_fs_open_root(const char *path, jb_err *err);

/* Opens relpath beneath root_fd, like openat(root_fd, relpath, flags, mode).
 *
 * `flags` are open(2) flags (O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL,
 * O_TRUNC, O_APPEND, O_DIRECTORY, O_PATH, O_NONBLOCK ...); O_NOFOLLOW,
 * O_NOCTTY and O_CLOEXEC are always added. `mode` is used only with
 * O_CREAT and is subject to the umask. The final component is never
 * followed: a symlink there is refused (INVALID_PARAMS), also with O_PATH.
 *
 * Returns the new descriptor (>= 0, the caller closes it) or -1. */
JB_EXPORT int jb_fs_open(int root_fd, const char *relpath, int flags, mode_t mode, jb_err *err);

/* mkdir -p beneath root_fd: makes every missing directory of relpath.
 *
 * Directories created get exactly `mode & 07777` (no umask) and, when uid
 * or gid is not (uid_t)-1 / (gid_t)-1, that owner. Directories that already
 * exist are left as they are (mode and owner are not changed); they must be
 * real directories: a symlink is refused with INVALID_PARAMS, a file with
 * CONFLICT. Concurrent creation of the same directory is not an error.
 *
 * Returns 1 when at least one directory was created, 0 when all existed,
 * -1 on error (directories created before the error stay). */
JB_EXPORT int jb_fs_mkdir_p(int root_fd, const char *relpath, mode_t mode, uid_t uid, gid_t gid,
                            jb_err *err);

/* The converger's write: makes relpath a regular file with exactly `len`
 * bytes of `data`, mode `mode & 07777` and the owner uid:gid ((uid_t)-1 /
 * (gid_t)-1: that part of the owner is not checked, and a new file gets the
 * caller's). The parent directory must exist.
 *
 *  - Already so (same bytes, mode and the requested owner): nothing is
 *    touched, returns 0.
 *  - Same bytes, only mode/owner differ: fixed in place with fchown/fchmod on
 *    a non-following descriptor; returns 1. (A file with several hard links
 *    is rewritten instead, so the other names are never changed.)
 *  - Otherwise: the content goes to a new temporary file ".<name>.jb-XXXXXX"
 *    in the same directory (created O_EXCL|O_NOFOLLOW), which is chowned,
 *    chmoded, fsynced, renamed over relpath; then the directory is fsynced.
 *    Returns 1.
 *
 * On every error the temporary file is removed and relpath holds either the
 * old or the new content, never a mix. A symlink at relpath is refused
 * (INVALID_PARAMS); a directory, device, FIFO or socket there is refused
 * (CONFLICT). The final name may be at most NAME_MAX - 11 bytes (room for
 * the temporary name). `data` may be NULL when len is 0.
 *
 * Returns 0 (unchanged), 1 (changed) or -1. */
JB_EXPORT int jb_fs_write_atomic(int root_fd, const char *relpath, const void *data, size_t len,
                                 mode_t mode, uid_t uid, gid_t gid, jb_err *err);

/* Reads the regular file relpath (never through a symlink) into a new
 * buffer. At most `max_size` bytes are accepted: a longer file is refused
 * with CONFLICT. A FIFO, device or directory is refused with CONFLICT
 * (a FIFO is never waited on).
 *
 * On success *ret is a malloc'ed buffer the caller frees, holding the file's
 * bytes followed by a NUL (the content may contain NULs itself; use
 * *ret_len), and *ret_len (when ret_len is not NULL) the byte count.
 * Returns 0, or -1 with *ret left NULL. */
JB_EXPORT int jb_fs_read(int root_fd, const char *relpath, size_t max_size, char **ret, size_t *ret_len,
                         jb_err *err);

/* Removes the non-directory relpath (a symlink there is removed itself; its
 * target is never touched). Idempotent: returns 1 when something was
 * removed, 0 when it (or a parent directory) was already missing, -1 on
 * error (a directory there is CONFLICT: use jb_fs_remove_tree). */
JB_EXPORT int jb_fs_unlink(int root_fd, const char *relpath, jb_err *err);

/* rm -rf beneath root_fd: removes relpath, whatever it is, and when it is a
 * directory, everything below it. Symlinks are removed, never followed.
 * It does not cross into other file systems (a mount point below relpath is
 * CONFLICT and stops the removal), and refuses trees deeper than 128 levels
 * (CONFLICT). The root itself cannot be named, so it cannot be removed.
 *
 * Returns 1 when something was removed, 0 when relpath was already missing,
 * -1 on error (part of the tree may have been removed by then). */
JB_EXPORT int jb_fs_remove_tree(int root_fd, const char *relpath, jb_err *err);

/* What a name is, seen without following it. */
typedef enum jb_fs_kind {
        JB_FS_MISSING = 0,      /* relpath, or one of its parent directories, does not exist */
        JB_FS_FILE,             /* a regular file */
        JB_FS_DIR,              /* a directory */
        JB_FS_SYMLINK,          /* a symbolic link (not followed) */
        JB_FS_OTHER,            /* a device, FIFO or socket */
} jb_fs_kind;

/* Tells what relpath is, without following a symlink in its last component.
 * A symlink or non-directory in a *parent* component is still an error
 * (INVALID_PARAMS / CONFLICT), as everywhere here.
 *
 * Returns a jb_fs_kind (>= 0) or -1. Test for a file with
 * `jb_fs_kind_of(fd, p, &err) == JB_FS_FILE`. */
JB_EXPORT int jb_fs_kind_of(int root_fd, const char *relpath, jb_err *err);

/* Removes the temporary files (".<name>.jb-XXXXXX") that a writer killed
 * in the middle of jb_fs_write_atomic() left in the directory reldir
 * (beneath root_fd; NULL or "." for root_fd itself). A writer holds a lock
 * on its temporary file for as long as it lives, so only abandoned ones are
 * removed, and it is safe to call while other processes write there. Not
 * recursive. Modules call it from worker_init for the directories they
 * write into. Returns the number removed, or -1 with err. */
JB_EXPORT int jb_fs_clean_temps(int root_fd, const char *reldir, jb_err *err);

#endif
