/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests for <jabali/fs.h>. Every test runs twice: once through openat2 and
 * once through the openat() walk used when the kernel lacks it. Each works
 * in its own mkdtemp directory:
 *     base/root      the root the functions are given
 *     base/outside   what an escape would reach (outside/secret must survive) */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <jabali/fs.h>

#include "fs-internal.h"

typedef struct state {
        char base[64];
        int base_fd;
        int root_fd;
} state;

#define SECRET "SECRET"

static void put(int dfd, const char *path, const char *content, mode_t mode) {
        int fd = openat(dfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, strlen(content)), (ssize_t) strlen(content));
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

/* Reads a file relative to dfd into a static buffer ("" for missing). */
static const char *get(int dfd, const char *path) {
        static char buf[4096];
        ssize_t n;
        int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);

        buf[0] = '\0';
        if (fd < 0)
                return buf;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        buf[n < 0 ? 0 : n] = '\0';
        return buf;
}

static bool exists_raw(int dfd, const char *path) {
        struct stat st;
        return fstatat(dfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void assert_secret_intact(state *s) {
        assert_string_equal(get(s->base_fd, "outside/secret"), SECRET);
}

static void assert_code(const jb_err *err, const char *code) {
        if (strcmp(err->code, code) != 0)
                fail_msg("expected %s, got %s (%s)", code, err->code, err->msg);
}

/* No temporary file of jb_fs_write_atomic left in a directory. */
static void assert_no_tmp(state *s, const char *dir) {
        int fd = openat(s->base_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d;
        struct dirent *de;

        assert_true(fd >= 0);
        d = fdopendir(fd);
        assert_non_null(d);
        while ((de = readdir(d)))
                if (strstr(de->d_name, ".jb-") && !strstr(de->d_name, "PLANTD"))
                        fail_msg("temporary file left: %s/%s", dir, de->d_name);
        closedir(d);
}

static int setup(void **st, bool fallback) {
        state *s = calloc(1, sizeof *s);

        assert_non_null(s);
        snprintf(s->base, sizeof s->base, "/tmp/jb-test-fs-XXXXXX");
        assert_non_null(mkdtemp(s->base));
        s->base_fd = open(s->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(s->base_fd >= 0);
        assert_int_equal(mkdirat(s->base_fd, "root", 0755), 0);
        assert_int_equal(mkdirat(s->base_fd, "outside", 0755), 0);
        put(s->base_fd, "outside/secret", SECRET, 0644);

        char root[128];
        jb_err err = JB_ERR_INIT;
        snprintf(root, sizeof root, "%s/root", s->base);
        s->root_fd = jb_fs_open_root(root, &err);
        assert_true(s->root_fd >= 0);

        jb_fs_test_force_fallback(fallback);
        *st = s;
        return 0;
}

static int setup_openat2(void **st) {
        return setup(st, false);
}

static int setup_fallback(void **st) {
        return setup(st, true);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
        (void) sb;
        (void) flag;
        (void) ftw;
        return remove(path);
}

static int teardown(void **st) {
        state *s = *st;

        jb_fs_test_force_fallback(false);
        jb_fs_test_set_tmp_suffix(NULL);
        close(s->root_fd);
        close(s->base_fd);
        assert_int_equal(nftw(s->base, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
        free(s);
        return 0;
}

static void test_open_root(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        char p[128];

        assert_int_equal(jb_fs_open_root("relative/dir", &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_fs_open_root(NULL, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        snprintf(p, sizeof p, "%s/missing", s->base);
        assert_int_equal(jb_fs_open_root(p, &err), -1);
        assert_code(&err, "NOT_FOUND");
        snprintf(p, sizeof p, "%s/outside/secret", s->base);
        assert_int_equal(jb_fs_open_root(p, &err), -1);
        assert_code(&err, "CONFLICT");

        int fd = jb_fs_open_root(s->base, &err);
        assert_true(fd >= 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        assert_true(fcntl(fd, F_GETFL) & O_PATH);
        close(fd);
}

static void test_bad_paths(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        char longname[NAME_MAX + 2], longpath[PATH_MAX + 8];
        const char *bad[] = {
                "", "/etc/passwd", "/", "..", "../outside/secret", "a/../../outside/secret",
                "a/../b", ".", "./a", "a/./b", "a//b", "a/", "//a", "a/..", longname, longpath,
        };

        memset(longname, 'x', sizeof longname - 1);
        longname[sizeof longname - 1] = '\0';
        for (size_t i = 0; i + 2 < sizeof longpath; i += 2)
                memcpy(longpath + i, "a/", 2);
        longpath[sizeof longpath - 2] = 'a';
        longpath[sizeof longpath - 1] = '\0';

        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                jb_err_clear(&err);
                assert_int_equal(jb_fs_open(s->root_fd, bad[i], O_RDONLY, 0, &err), -1);
                assert_code(&err, "INVALID_PARAMS");
                jb_err_clear(&err);
                assert_int_equal(jb_fs_write_atomic(s->root_fd, bad[i], "x", 1, 0644, -1, -1, &err), -1);
                assert_code(&err, "INVALID_PARAMS");
                jb_err_clear(&err);
                assert_int_equal(jb_fs_mkdir_p(s->root_fd, bad[i], 0755, -1, -1, &err), -1);
                assert_code(&err, "INVALID_PARAMS");
                jb_err_clear(&err);
                assert_int_equal(jb_fs_unlink(s->root_fd, bad[i], &err), -1);
                assert_code(&err, "INVALID_PARAMS");
                jb_err_clear(&err);
                assert_int_equal(jb_fs_remove_tree(s->root_fd, bad[i], &err), -1);
                assert_code(&err, "INVALID_PARAMS");
                jb_err_clear(&err);
                assert_int_equal(jb_fs_kind_of(s->root_fd, bad[i], &err), -1);
                assert_code(&err, "INVALID_PARAMS");
        }
        assert_int_equal(jb_fs_open(s->root_fd, NULL, O_RDONLY, 0, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        /* AT_FDCWD would mean "the cwd": refused like any negative fd. */
        assert_int_equal(jb_fs_open(AT_FDCWD, "x", O_RDONLY, 0, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_fs_open(-1, "x", O_RDONLY, 0, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_secret_intact(s);
        assert_false(exists_raw(s->base_fd, "root/a"));
}

static void test_open(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        char buf[16] = "";
        int fd;

        assert_int_equal(mkdirat(s->base_fd, "root/d", 0755), 0);
        put(s->base_fd, "root/d/f", "hello", 0644);

        fd = jb_fs_open(s->root_fd, "d/f", O_RDONLY, 0, &err);
        assert_true(fd >= 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        assert_int_equal(read(fd, buf, sizeof buf - 1), 5);
        assert_string_equal(buf, "hello");
        close(fd);

        fd = jb_fs_open(s->root_fd, "d", O_RDONLY | O_DIRECTORY, 0, &err);
        assert_true(fd >= 0);
        close(fd);
        fd = jb_fs_open(s->root_fd, "d/f", O_PATH, 0, &err);
        assert_true(fd >= 0);
        close(fd);

        assert_int_equal(jb_fs_open(s->root_fd, "d/missing", O_RDONLY, 0, &err), -1);
        assert_code(&err, "NOT_FOUND");
        assert_int_equal(jb_fs_open(s->root_fd, "nodir/f", O_RDONLY, 0, &err), -1);
        assert_code(&err, "NOT_FOUND");
        /* A file where a directory is expected. */
        assert_int_equal(jb_fs_open(s->root_fd, "d/f/x", O_RDONLY, 0, &err), -1);
        assert_code(&err, "CONFLICT");
        assert_int_equal(jb_fs_open(s->root_fd, "d/f", O_RDONLY | O_DIRECTORY, 0, &err), -1);
        assert_code(&err, "CONFLICT");

        /* Creation. */
        fd = jb_fs_open(s->root_fd, "d/new", O_WRONLY | O_CREAT | O_EXCL, 0600, &err);
        assert_true(fd >= 0);
        close(fd);
        assert_true(exists_raw(s->base_fd, "root/d/new"));
        assert_int_equal(jb_fs_open(s->root_fd, "d/new", O_WRONLY | O_CREAT | O_EXCL, 0600, &err), -1);
        assert_code(&err, "ALREADY_EXISTS");
}

static void test_open_symlinks(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        char target[128];
        const int modes[] = { O_RDONLY, O_PATH, O_RDONLY | O_DIRECTORY, O_WRONLY | O_TRUNC,
                              O_WRONLY | O_CREAT, O_PATH | O_DIRECTORY };

        snprintf(target, sizeof target, "%s/outside", s->base);
        assert_int_equal(mkdirat(s->base_fd, "root/d", 0755), 0);
        put(s->base_fd, "root/d/f", "inner", 0644);
        /* Escapes: absolute and relative links out of the root. */
        assert_int_equal(symlinkat(target, s->base_fd, "root/esc"), 0);
        assert_int_equal(symlinkat("../outside", s->base_fd, "root/esc2"), 0);
        assert_int_equal(symlinkat("../../outside/secret", s->base_fd, "root/d/leak"), 0);
        /* Links that stay inside are refused too: no link is ever crossed. */
        assert_int_equal(symlinkat("d", s->base_fd, "root/in"), 0);
        assert_int_equal(symlinkat("f", s->base_fd, "root/d/flink"), 0);
        assert_int_equal(symlinkat("/nonexistent-jb-test", s->base_fd, "root/dangling"), 0);

        const char *paths[] = { "esc/secret", "esc2/secret", "d/leak", "in/f", "d/flink", "esc", "in",
                                "dangling" };
        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
                for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
                        jb_err_clear(&err);
                        int fd = jb_fs_open(s->root_fd, paths[i], modes[m], 0644, &err);
                        if (fd >= 0)
                                fail_msg("%s (flags %#x) opened", paths[i], modes[m]);
                        assert_code(&err, "INVALID_PARAMS");
                }

        /* Creating through a dangling link must not create its target. */
        assert_false(exists_raw(AT_FDCWD, "/nonexistent-jb-test"));
        assert_secret_intact(s);
        assert_string_equal(get(s->base_fd, "root/d/f"), "inner");
}

static void test_mkdir_p(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        uid_t uid = geteuid() == 0 ? 1234 : geteuid();
        gid_t gid = geteuid() == 0 ? 5678 : getegid();
        mode_t old_umask = umask(077);
        struct stat sb;

        assert_int_equal(jb_fs_mkdir_p(s->root_fd, "a/b/c", 02751, uid, gid, &err), 1);
        umask(old_umask);
        assert_int_equal(fstatat(s->base_fd, "root/a/b/c", &sb, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISDIR(sb.st_mode));
        assert_int_equal(sb.st_mode & 07777, 02751);    /* exact: no umask */
        assert_int_equal(sb.st_uid, uid);
        assert_int_equal(sb.st_gid, gid);
        assert_int_equal(fstatat(s->base_fd, "root/a", &sb, 0), 0);
        assert_int_equal(sb.st_mode & 07777, 02751);

        /* Everything exists: 0, and existing directories are left alone. */
        assert_int_equal(fchmodat(s->base_fd, "root/a", 0700, 0), 0);
        assert_int_equal(jb_fs_mkdir_p(s->root_fd, "a/b/c", 0755, (uid_t) -1, (gid_t) -1, &err), 0);
        assert_int_equal(fstatat(s->base_fd, "root/a", &sb, 0), 0);
        assert_int_equal(sb.st_mode & 07777, 0700);
        assert_int_equal(jb_fs_mkdir_p(s->root_fd, "a/b/c/d", 0755, (uid_t) -1, (gid_t) -1, &err), 1);
        assert_int_equal(jb_fs_mkdir_p(s->root_fd, "a", 0755, (uid_t) -1, (gid_t) -1, &err), 0);

        /* A symlinked component (pointing outside) is refused; nothing is made there. */
        char target[128];
        snprintf(target, sizeof target, "%s/outside", s->base);
        assert_int_equal(symlinkat(target, s->base_fd, "root/a/esc"), 0);
        assert_int_equal(jb_fs_mkdir_p(s->root_fd, "a/esc/x/y", 0755, (uid_t) -1, (gid_t) -1, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_non_null(strstr(err.msg, "a/esc"));
        assert_false(exists_raw(s->base_fd, "outside/x"));
        assert_int_equal(jb_fs_mkdir_p(s->root_fd, "a/esc", 0755, (uid_t) -1, (gid_t) -1, &err), -1);
        assert_code(&err, "INVALID_PARAMS");

        /* A file where a directory is expected. */
        put(s->base_fd, "root/a/file", "x", 0644);
        assert_int_equal(jb_fs_mkdir_p(s->root_fd, "a/file/sub", 0755, (uid_t) -1, (gid_t) -1, &err), -1);
        assert_code(&err, "CONFLICT");
        assert_string_equal(get(s->base_fd, "root/a/file"), "x");
        assert_secret_intact(s);
}

static void test_write_atomic(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        uid_t uid = geteuid() == 0 ? 1234 : geteuid();
        gid_t gid = geteuid() == 0 ? 5678 : getegid();
        struct stat a, b;

        assert_int_equal(mkdirat(s->base_fd, "root/etc", 0755), 0);

        /* New file. */
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "etc/site.conf", "v1\n", 3, 0640, uid, gid, &err), 1);
        assert_string_equal(get(s->base_fd, "root/etc/site.conf"), "v1\n");
        assert_int_equal(fstatat(s->base_fd, "root/etc/site.conf", &a, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISREG(a.st_mode));
        assert_int_equal(a.st_mode & 07777, 0640);
        assert_int_equal(a.st_uid, uid);
        assert_int_equal(a.st_gid, gid);

        /* Same: nothing touched (same inode, same ctime). */
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "etc/site.conf", "v1\n", 3, 0640, uid, gid, &err), 0);
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "etc/site.conf", "v1\n", 3, 0640, -1, -1, &err), 0);
        assert_int_equal(fstatat(s->base_fd, "root/etc/site.conf", &b, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(a.st_ino, b.st_ino);
        assert_int_equal(a.st_ctim.tv_nsec, b.st_ctim.tv_nsec);
        assert_int_equal(a.st_ctim.tv_sec, b.st_ctim.tv_sec);

        /* Only the mode differs: fixed in place. */
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "etc/site.conf", "v1\n", 3, 0600, uid, gid, &err), 1);
        assert_int_equal(fstatat(s->base_fd, "root/etc/site.conf", &b, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_equal(a.st_ino, b.st_ino);
        assert_int_equal(b.st_mode & 07777, 0600);

        /* Only the owner differs: fixed in place. */
        if (geteuid() == 0) {
                assert_int_equal(jb_fs_write_atomic(s->root_fd, "etc/site.conf", "v1\n", 3, 0600, 4321, gid, &err), 1);
                assert_int_equal(fstatat(s->base_fd, "root/etc/site.conf", &b, AT_SYMLINK_NOFOLLOW), 0);
                assert_int_equal(a.st_ino, b.st_ino);
                assert_int_equal(b.st_uid, 4321);
                assert_int_equal(b.st_gid, gid);
        }

        /* New content: a new inode renamed over. */
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "etc/site.conf", "v2 longer\n", 10, 0644, -1, -1, &err), 1);
        assert_string_equal(get(s->base_fd, "root/etc/site.conf"), "v2 longer\n");
        assert_int_equal(fstatat(s->base_fd, "root/etc/site.conf", &b, AT_SYMLINK_NOFOLLOW), 0);
        assert_int_not_equal(a.st_ino, b.st_ino);
        assert_int_equal(b.st_mode & 07777, 0644);
        /* Same length, other bytes. */
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "etc/site.conf", "v3 longer\n", 10, 0644, -1, -1, &err), 1);
        assert_string_equal(get(s->base_fd, "root/etc/site.conf"), "v3 longer\n");
        /* Shorter: a prefix of the old content is not "the same". */
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "etc/site.conf", "v3", 2, 0644, -1, -1, &err), 1);
        assert_string_equal(get(s->base_fd, "root/etc/site.conf"), "v3");

        /* Empty content, top-level name. */
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "empty", NULL, 0, 0600, -1, -1, &err), 1);
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "empty", NULL, 0, 0600, -1, -1, &err), 0);
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "empty", NULL, 3, 0600, -1, -1, &err), -1);
        assert_code(&err, "INVALID_PARAMS");

        /* Binary content with NULs. */
        const char bin[] = { 'a', 0, 'b', 0, 'c' };
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "bin", bin, sizeof bin, 0600, -1, -1, &err), 1);
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "bin", bin, sizeof bin, 0600, -1, -1, &err), 0);

        /* Large content (several read chunks while comparing). */
        size_t big_len = 200000;
        char *big = malloc(big_len);
        assert_non_null(big);
        for (size_t i = 0; i < big_len; i++)
                big[i] = (char) ('a' + i % 26);
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "big", big, big_len, 0644, -1, -1, &err), 1);
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "big", big, big_len, 0644, -1, -1, &err), 0);
        big[big_len - 1] = '!';
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "big", big, big_len, 0644, -1, -1, &err), 1);
        free(big);

        /* Missing parent directory. */
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "nodir/x.conf", "x", 1, 0644, -1, -1, &err), -1);
        assert_code(&err, "NOT_FOUND");

        /* File name too long for the temporary name. */
        char name[NAME_MAX + 1];
        memset(name, 'n', NAME_MAX - 5);
        name[NAME_MAX - 5] = '\0';
        assert_int_equal(jb_fs_write_atomic(s->root_fd, name, "x", 1, 0644, -1, -1, &err), -1);
        assert_code(&err, "INVALID_PARAMS");

        assert_no_tmp(s, "root/etc");
        assert_no_tmp(s, "root");
}

static void test_write_atomic_hostile(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        char target[128];
        struct stat sb;

        assert_int_equal(mkdirat(s->base_fd, "root/etc", 0755), 0);
        snprintf(target, sizeof target, "%s/outside/secret", s->base);

        /* Target is a symlink to a file outside: refused, link and file unchanged. */
        assert_int_equal(symlinkat(target, s->base_fd, "root/etc/link.conf"), 0);
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "etc/link.conf", "pwn", 3, 0644, -1, -1, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(fstatat(s->base_fd, "root/etc/link.conf", &sb, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISLNK(sb.st_mode));

        /* Parent is a symlink to outside. */
        snprintf(target, sizeof target, "%s/outside", s->base);
        assert_int_equal(symlinkat(target, s->base_fd, "root/evil"), 0);
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "evil/secret", "pwn", 3, 0644, -1, -1, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "evil/new", "pwn", 3, 0644, -1, -1, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_false(exists_raw(s->base_fd, "outside/new"));

        /* A directory where the file is expected. */
        assert_int_equal(mkdirat(s->base_fd, "root/etc/dir.conf", 0755), 0);
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "etc/dir.conf", "x", 1, 0644, -1, -1, &err), -1);
        assert_code(&err, "CONFLICT");

        /* A FIFO: refused without blocking. */
        assert_int_equal(mkfifoat(s->base_fd, "root/etc/fifo.conf", 0644), 0);
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "etc/fifo.conf", "x", 1, 0644, -1, -1, &err), -1);
        assert_code(&err, "CONFLICT");

        /* A pre-planted temporary name (symlink to the secret): the write
         * does not follow it and picks another name. */
        snprintf(target, sizeof target, "%s/outside/secret", s->base);
        assert_int_equal(symlinkat(target, s->base_fd, "root/etc/.site.conf.jb-PLANTD"), 0);
        jb_fs_test_set_tmp_suffix("PLANTD");
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "etc/site.conf", "good", 4, 0644, -1, -1, &err), 1);
        jb_fs_test_set_tmp_suffix(NULL);
        assert_string_equal(get(s->base_fd, "root/etc/site.conf"), "good");
        assert_int_equal(fstatat(s->base_fd, "root/etc/.site.conf.jb-PLANTD", &sb, AT_SYMLINK_NOFOLLOW), 0);
        assert_true(S_ISLNK(sb.st_mode));

        /* A hard link elsewhere with a wrong mode: rewritten, the other name
         * keeps its mode (fchmod in place would have changed it). */
        put(s->base_fd, "root/etc/hl.conf", "same", 0644);
        assert_int_equal(linkat(s->base_fd, "root/etc/hl.conf", s->base_fd, "root/other-name", 0), 0);
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "etc/hl.conf", "same", 4, 0600, -1, -1, &err), 1);
        assert_int_equal(fstatat(s->base_fd, "root/other-name", &sb, 0), 0);
        assert_int_equal(sb.st_mode & 07777, 0644);
        assert_int_equal(sb.st_nlink, 1);
        assert_int_equal(fstatat(s->base_fd, "root/etc/hl.conf", &sb, 0), 0);
        assert_int_equal(sb.st_mode & 07777, 0600);

        assert_secret_intact(s);
        assert_no_tmp(s, "root/etc");
}

/* A failure after the temporary file exists (the write hits RLIMIT_FSIZE):
 * the temporary file is gone and the target keeps its old content. */
static void test_write_atomic_failure(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        struct rlimit old, small = { .rlim_cur = 8, .rlim_max = RLIM_INFINITY };
        char data[64];

        assert_int_equal(jb_fs_write_atomic(s->root_fd, "t.conf", "old", 3, 0644, -1, -1, &err), 1);

        memset(data, 'z', sizeof data);
        signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
        small.rlim_max = old.rlim_max;
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
        int r = jb_fs_write_atomic(s->root_fd, "t.conf", data, sizeof data, 0644, -1, -1, &err);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        signal(SIGXFSZ, SIG_DFL);

        assert_int_equal(r, -1);
        assert_code(&err, "INTERNAL");
        assert_non_null(strstr(err.msg, "t.conf"));
        assert_string_equal(get(s->base_fd, "root/t.conf"), "old");
        assert_no_tmp(s, "root");
}

static void test_read(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        char target[128], *buf = NULL;
        size_t len = 99;

        assert_int_equal(mkdirat(s->base_fd, "root/d", 0755), 0);
        put(s->base_fd, "root/d/f", "0123456789", 0644);
        put(s->base_fd, "root/empty", "", 0644);

        assert_int_equal(jb_fs_read(s->root_fd, "d/f", 10, &buf, &len, &err), 0);
        assert_int_equal(len, 10);
        assert_string_equal(buf, "0123456789");
        free(buf);
        assert_int_equal(jb_fs_read(s->root_fd, "d/f", 1 << 20, &buf, NULL, &err), 0);
        assert_string_equal(buf, "0123456789");
        free(buf);

        assert_int_equal(jb_fs_read(s->root_fd, "d/f", 9, &buf, &len, &err), -1);
        assert_code(&err, "CONFLICT");
        assert_null(buf);

        assert_int_equal(jb_fs_read(s->root_fd, "empty", 0, &buf, &len, &err), 0);
        assert_int_equal(len, 0);
        assert_string_equal(buf, "");
        free(buf);

        /* A file larger than the first chunk size guess. */
        size_t big_len = 300000;
        char *big = calloc(1, big_len);
        assert_non_null(big);
        memset(big, 'q', big_len);
        assert_int_equal(jb_fs_write_atomic(s->root_fd, "big", big, big_len, 0644, -1, -1, &err), 1);
        assert_int_equal(jb_fs_read(s->root_fd, "big", big_len, &buf, &len, &err), 0);
        assert_int_equal(len, big_len);
        assert_memory_equal(buf, big, big_len);
        assert_int_equal(buf[big_len], '\0');
        free(buf);
        free(big);

        assert_int_equal(jb_fs_read(s->root_fd, "d/missing", 100, &buf, &len, &err), -1);
        assert_code(&err, "NOT_FOUND");
        assert_int_equal(jb_fs_read(s->root_fd, "d", 100, &buf, &len, &err), -1);
        assert_code(&err, "CONFLICT");
        assert_int_equal(mkfifoat(s->base_fd, "root/fifo", 0644), 0);
        assert_int_equal(jb_fs_read(s->root_fd, "fifo", 100, &buf, &len, &err), -1);
        assert_code(&err, "CONFLICT");

        snprintf(target, sizeof target, "%s/outside/secret", s->base);
        assert_int_equal(symlinkat(target, s->base_fd, "root/leak"), 0);
        assert_int_equal(jb_fs_read(s->root_fd, "leak", 100, &buf, &len, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        snprintf(target, sizeof target, "%s/outside", s->base);
        assert_int_equal(symlinkat(target, s->base_fd, "root/esc"), 0);
        assert_int_equal(jb_fs_read(s->root_fd, "esc/secret", 100, &buf, &len, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_fs_read(s->root_fd, "../outside/secret", 100, &buf, &len, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_null(buf);
        assert_int_equal(jb_fs_read(s->root_fd, "d/f", 100, NULL, &len, &err), -1);
        assert_code(&err, "INVALID_PARAMS");
}

static void test_unlink(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        char target[128];

        assert_int_equal(mkdirat(s->base_fd, "root/d", 0755), 0);
        put(s->base_fd, "root/d/f", "x", 0644);

        assert_int_equal(jb_fs_unlink(s->root_fd, "d/f", &err), 1);
        assert_false(exists_raw(s->base_fd, "root/d/f"));
        assert_int_equal(jb_fs_unlink(s->root_fd, "d/f", &err), 0);
        assert_int_equal(jb_fs_unlink(s->root_fd, "nodir/f", &err), 0);
        assert_int_equal(jb_fs_unlink(s->root_fd, "d", &err), -1);
        assert_code(&err, "CONFLICT");

        /* A symlink is removed itself, its target stays. */
        snprintf(target, sizeof target, "%s/outside/secret", s->base);
        assert_int_equal(symlinkat(target, s->base_fd, "root/d/link"), 0);
        assert_int_equal(jb_fs_unlink(s->root_fd, "d/link", &err), 1);
        assert_false(exists_raw(s->base_fd, "root/d/link"));

        /* Through a symlinked parent: refused. */
        snprintf(target, sizeof target, "%s/outside", s->base);
        assert_int_equal(symlinkat(target, s->base_fd, "root/esc"), 0);
        assert_int_equal(jb_fs_unlink(s->root_fd, "esc/secret", &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_secret_intact(s);
}

static void test_remove_tree(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        char target[128];

        assert_int_equal(jb_fs_mkdir_p(s->root_fd, "site/cache/a/b/c", 0755, -1, -1, &err), 1);
        assert_int_equal(jb_fs_mkdir_p(s->root_fd, "site/cache/empty", 0755, -1, -1, &err), 1);
        put(s->base_fd, "root/site/cache/a/f1", "1", 0644);
        put(s->base_fd, "root/site/cache/a/b/c/f2", "2", 0000);
        put(s->base_fd, "root/site/keep", "k", 0644);
        snprintf(target, sizeof target, "%s/outside", s->base);
        assert_int_equal(symlinkat(target, s->base_fd, "root/site/cache/a/b/out"), 0);
        assert_int_equal(symlinkat(target, s->base_fd, "root/site/cache/out2"), 0);
        assert_int_equal(mkfifoat(s->base_fd, "root/site/cache/a/fifo", 0644), 0);
        /* A directory without permissions is still removed (as root). */
        if (geteuid() == 0)
                assert_int_equal(fchmodat(s->base_fd, "root/site/cache/a/b/c", 0, 0), 0);

        assert_int_equal(jb_fs_remove_tree(s->root_fd, "site/cache", &err), 1);
        assert_false(exists_raw(s->base_fd, "root/site/cache"));
        assert_string_equal(get(s->base_fd, "root/site/keep"), "k");
        assert_secret_intact(s);
        assert_int_equal(jb_fs_remove_tree(s->root_fd, "site/cache", &err), 0);
        assert_int_equal(jb_fs_remove_tree(s->root_fd, "nodir/cache", &err), 0);

        /* A file and a symlink as the named object. */
        assert_int_equal(jb_fs_remove_tree(s->root_fd, "site/keep", &err), 1);
        assert_int_equal(symlinkat(target, s->base_fd, "root/site/link"), 0);
        assert_int_equal(jb_fs_remove_tree(s->root_fd, "site/link", &err), 1);
        assert_secret_intact(s);
        assert_true(exists_raw(s->base_fd, "outside"));

        /* Through a symlinked parent: refused. */
        assert_int_equal(symlinkat(target, s->base_fd, "root/esc"), 0);
        assert_int_equal(jb_fs_remove_tree(s->root_fd, "esc/secret", &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_secret_intact(s);

        /* Too deep. */
        char deep[PATH_MAX];
        size_t o = 0;
        for (int i = 0; i < 130; i++)
                o += (size_t) snprintf(deep + o, sizeof deep - o, "%sd", i ? "/" : "");
        assert_int_equal(jb_fs_mkdir_p(s->root_fd, deep, 0755, -1, -1, &err), 1);
        assert_int_equal(jb_fs_remove_tree(s->root_fd, "d", &err), -1);
        assert_code(&err, "CONFLICT");
        /* 100 levels are fine: cut the path after its 100th "d". */
        deep[199] = '\0';
        assert_int_equal(jb_fs_remove_tree(s->root_fd, deep, &err), 1);
        assert_int_equal(jb_fs_remove_tree(s->root_fd, "d", &err), 1);
        assert_false(exists_raw(s->base_fd, "root/d"));
}

static void test_kind_of(void **st) {
        state *s = *st;
        jb_err err = JB_ERR_INIT;
        char target[128];

        assert_int_equal(mkdirat(s->base_fd, "root/d", 0755), 0);
        put(s->base_fd, "root/d/f", "x", 0644);
        assert_int_equal(mkfifoat(s->base_fd, "root/d/fifo", 0644), 0);
        snprintf(target, sizeof target, "%s/outside", s->base);
        assert_int_equal(symlinkat(target, s->base_fd, "root/d/link"), 0);

        assert_int_equal(jb_fs_kind_of(s->root_fd, "d", &err), JB_FS_DIR);
        assert_int_equal(jb_fs_kind_of(s->root_fd, "d/f", &err), JB_FS_FILE);
        assert_int_equal(jb_fs_kind_of(s->root_fd, "d/fifo", &err), JB_FS_OTHER);
        assert_int_equal(jb_fs_kind_of(s->root_fd, "d/link", &err), JB_FS_SYMLINK);
        assert_int_equal(jb_fs_kind_of(s->root_fd, "d/missing", &err), JB_FS_MISSING);
        assert_int_equal(jb_fs_kind_of(s->root_fd, "missing/f", &err), JB_FS_MISSING);
        assert_int_equal(jb_fs_kind_of(s->root_fd, "d/link/secret", &err), -1);
        assert_code(&err, "INVALID_PARAMS");
        assert_int_equal(jb_fs_kind_of(s->root_fd, "d/f/x", &err), -1);
        assert_code(&err, "CONFLICT");
}

#define BOTH(t)                                                                  \
        cmocka_unit_test_setup_teardown(t, setup_openat2, teardown),            \
        cmocka_unit_test_setup_teardown(t, setup_fallback, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                BOTH(test_open_root),
                BOTH(test_bad_paths),
                BOTH(test_open),
                BOTH(test_open_symlinks),
                BOTH(test_mkdir_p),
                BOTH(test_write_atomic),
                BOTH(test_write_atomic_hostile),
                BOTH(test_write_atomic_failure),
                BOTH(test_read),
                BOTH(test_unlink),
                BOTH(test_remove_tree),
                BOTH(test_kind_of),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
