/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_TEST_FAKE_JOURNAL_H
#define JABALI_TEST_FAKE_JOURNAL_H

/* A fake journald for unit tests: in a forked child, a private /run (a
 * mount namespace, or a user namespace where root is not available) with
 * a datagram socket at journald's path, and a tiny tagged record stream
 * back to the parent. Included by test-audit.c and test-log.c. */

#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define JOURNAL_DIR "/run/systemd/journal"
#define JOURNAL_SOCKET JOURNAL_DIR "/socket"

static int write_small_file(const char *path, const char *s) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -1;
        n = write(fd, s, strlen(s));
        close(fd);
        return n == (ssize_t) strlen(s) ? 0 : -1;
}

/* In a forked child: a private /run with nothing in it. As root a mount
 * namespace is enough; otherwise a user namespace maps us to root in it. */
static int private_run(void) {
        if (unshare(CLONE_NEWNS) < 0) {
                char map[64];
                uid_t uid = geteuid();
                gid_t gid = getegid();

                if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
                        return -1;
                snprintf(map, sizeof map, "0 %u 1", (unsigned) uid);
                if (write_small_file("/proc/self/uid_map", map) < 0)
                        return -1;
                (void) write_small_file("/proc/self/setgroups", "deny");
                snprintf(map, sizeof map, "0 %u 1", (unsigned) gid);
                if (write_small_file("/proc/self/gid_map", map) < 0)
                        return -1;
        }
        if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
                return -1;
        if (mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") < 0)
                return -1;
        return 0;
}

static int bind_journal(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = JOURNAL_SOCKET };
        int fd;

        if (mkdir("/run/systemd", 0755) < 0 || mkdir(JOURNAL_DIR, 0755) < 0)
                return -1;
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -1;
        return fd;
}

/* Child → parent records: a tag byte, a 32-bit length, the bytes. */
static void send_rec(int out, char tag, const void *p, uint32_t len) {
        if (write(out, &tag, 1) != 1 || write(out, &len, 4) != 4 || (len && write(out, p, len) != (ssize_t) len))
                _exit(3);
}

static void send_datagrams(int out, int jfd) {
        char dg[65536];
        ssize_t n;

        while ((n = recv(jfd, dg, sizeof dg, MSG_DONTWAIT)) > 0)
                send_rec(out, 'D', dg, (uint32_t) n);
}

/* Parent side: the records a child sent, until it closed its end. Each
 * record's data is calloc'ed and NUL-terminated; the caller frees it.
 * Uses cmocka's assertions (include this after <cmocka.h>). */
typedef struct rec {
        char tag;
        uint32_t len;
        char *data;
} rec;

static size_t read_recs(int in, rec *recs, size_t max) {
        size_t n = 0;

        for (;;) {
                char tag;
                uint32_t len;
                ssize_t k = read(in, &tag, 1);
                if (k == 0)
                        break;
                assert_int_equal(k, 1);
                assert_int_equal(read(in, &len, 4), 4);
                assert_true(n < max);
                recs[n].tag = tag;
                recs[n].len = len;
                recs[n].data = calloc(1, (size_t) len + 1);
                assert_non_null(recs[n].data);
                for (uint32_t got = 0; got < len;) {
                        k = read(in, recs[n].data + got, len - got);
                        assert_true(k > 0);
                        got += (uint32_t) k;
                }
                n++;
        }
        return n;
}

#endif
