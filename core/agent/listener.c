/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The listening socket: socket activation or our own bind, accept, peer
 * authorisation, connection caps, pausing near the descriptor limit. */

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <systemd/sd-daemon.h>

#include "conn.h"
#include "dispatch.h"
#include "log.h"
#include "peer.h"
#include "util.h"

/* Descriptors kept free for workers, the audit file, reloads and spawned
 * programs, whatever the number of clients. */
#define FD_RESERVE 64u

static int make_sockaddr(const char *path, struct sockaddr_un *sa, socklen_t *len) {
        size_t n = strlen(path);

        if (n == 0 || n >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        memcpy(sa->sun_path, path, n);
        *len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
}

/* A socket file left by a previous run is removed only when nothing answers
 * on it: two agents must never fight over one path. */
static int remove_stale_socket(const char *path) {
        struct sockaddr_un sa;
        socklen_t len;
        struct stat st;
        _cleanup_close_ int fd = -1;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;
        if (make_sockaddr(path, &sa, &len) < 0)
                return -ENAMETOOLONG;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, len) == 0)
                return -EADDRINUSE;
        if (errno != ECONNREFUSED)
                return -errno;
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

static int bind_socket(server *s) {
        const struct agent_config *cfg = s->config;
        struct sockaddr_un sa;
        socklen_t len;
        _cleanup_close_ int fd = -1;
        int r;

        r = make_sockaddr(cfg->socket_path, &sa, &len);
        if (r < 0)
                return log_error_errno(r, "socket path %s is too long", cfg->socket_path);
        r = remove_stale_socket(cfg->socket_path);
        if (r == -EADDRINUSE)
                return log_error_errno(r, "another process answers on %s", cfg->socket_path);
        if (r < 0)
                return log_error_errno(r, "cannot reuse %s", cfg->socket_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "socket()");
        /* Nobody may connect before mode and group are right: bind with a
         * umask that leaves the file owner-only, then widen it. */
        mode_t old = umask(0177);
        r = bind(fd, (struct sockaddr *) &sa, len);
        umask(old);
        if (r < 0)
                return log_error_errno(errno, "bind(%s)", cfg->socket_path);
        s->bound_path = strdup(cfg->socket_path);
        if (!s->bound_path)
                return -ENOMEM;
        if (cfg->has_socket_gid && chown(cfg->socket_path, 0, cfg->socket_gid) < 0)
                return log_error_errno(errno, "chown(%s)", cfg->socket_path);
        if (chmod(cfg->socket_path, cfg->socket_mode) < 0)
                return log_error_errno(errno, "chmod(%s)", cfg->socket_path);
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "listen(%s)", cfg->socket_path);
        return TAKE_FD(fd);
}

static int take_activated_socket(server *s) {
        int n = sd_listen_fds(1);
        int fd = SD_LISTEN_FDS_START;

        if (n <= 0)
                return n;
        if (n > 1)
                return log_error_errno(EINVAL, "%d sockets passed; expected one", n);
        if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0)
                return log_error_errno(EINVAL, "the passed socket is not a listening unix stream socket");
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
                return log_error_errno(errno, "fcntl(O_NONBLOCK)");
        s->socket_activated = true;
        return fd;
}

static void refuse(server *s, int fd, const struct peer *peer, jb_code code, const char *why) {
        s->stats.refused++;
        audit_event(s, "connection_refused", peer, jb_code_name(code), why);
        send_refusal(fd, jb_code_name(code), why);
        safe_close(fd);
}

static int on_accept(sd_event_source *es, int lfd, uint32_t revents, void *userdata) {
        server *s = userdata;
        const struct agent_config *cfg = s->config;
        struct peer peer;
        int fd;

        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE) {
                        /* Out of descriptors despite the budget: stop
                         * accepting until a connection closes. */
                        s->listen_paused = true;
                        (void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_OFF);
                        log_warning("out of file descriptors; accepting paused");
                } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        log_warning_errno(errno, "accept()");
                return 0;
        }
        if (peer_read(fd, &peer) < 0) {
                refuse(s, fd, NULL, JB_E_PERMISSION_DENIED, "peer credentials unavailable");
                return 0;
        }
        if (!peer_allowed(cfg, fd, &peer)) {
                char why[96];
                snprintf(why, sizeof why, "uid %u is not allowed to use this socket", (unsigned) peer.uid);
                refuse(s, fd, &peer, JB_E_PERMISSION_DENIED, why);
                return 0;
        }
        if (s->draining) {
                refuse(s, fd, &peer, JB_E_BUSY, "the agent is shutting down");
                return 0;
        }
        if (s->n_conns >= cfg->max_connections) {
                refuse(s, fd, &peer, JB_E_BUSY, "too many connections");
                return 0;
        }
        if (uid_count_get(s, peer.uid) >= cfg->max_connections_per_uid) {
                refuse(s, fd, &peer, JB_E_BUSY, "too many connections from this uid");
                return 0;
        }
        if (!conn_new(s, fd, &peer))
                log_warning("cannot set up a connection; dropped");
        listener_update(s);
        return 0;
}

/* Raises the soft descriptor limit to the hard one and derives how many
 * connections fit beside the reserve. */
static void compute_fd_budget(server *s) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
                (void) getrlimit(RLIMIT_NOFILE, &rl);
        }
        if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1u << 20)
                rl.rlim_cur = 1u << 20;
        /* Under a tiny limit, half goes to clients and half stays in reserve. */
        s->fd_budget = rl.rlim_cur > 2 * FD_RESERVE ? (unsigned) (rl.rlim_cur - FD_RESERVE) : (unsigned) rl.rlim_cur / 2;
}

void listener_update(server *s) {
        bool pause;

        if (!s->listen_source)
                return;
        pause = s->n_conns >= s->fd_budget;
        if (pause == s->listen_paused && !(s->listen_paused && !pause))
                return;
        if (pause != s->listen_paused)
                log_info("accepting %s (%u connections, budget %u)", pause ? "paused" : "resumed", s->n_conns,
                         s->fd_budget);
        s->listen_paused = pause;
        (void) sd_event_source_set_enabled(s->listen_source, pause ? SD_EVENT_OFF : SD_EVENT_ON);
}

int listener_open(server *s) {
        int fd, r;

        compute_fd_budget(s);
        fd = take_activated_socket(s);
        if (fd == 0)
                fd = bind_socket(s);
        if (fd < 0)
                return fd;
        s->listen_fd = fd;
        r = sd_event_add_io(s->event, &s->listen_source, fd, EPOLLIN, on_accept, s);
        if (r < 0)
                return log_error_errno(r, "cannot watch the listening socket");
        /* Same priority as the connections: a lower one let busy clients
         * starve new ones out of accept() for as long as the load lasted. */
        return 0;
}

void listener_close(server *s) {
        s->listen_source = sd_event_source_disable_unref(s->listen_source);
        s->listen_fd = safe_close(s->listen_fd);
        if (s->bound_path) {
                (void) unlink(s->bound_path);
                free(s->bound_path);
                s->bound_path = NULL;
        }
}
