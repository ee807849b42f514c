/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The load generator: N connections to a jabali-agent (or to bench/floor),
 * each keeping D requests in flight, every answer checked and timed.
 *
 *   loadgen --socket PATH --connections N --pipeline D
 *           (--requests COUNT | --duration SEC) --action NAME
 *           [--params JSON] [--warmup COUNT]
 *
 * Each connection first makes one round trip on its own (so that all of
 * them are being served), then the load starts; the first COUNT answers
 * (--warmup) are not counted, and the clock starts after them.
 *
 * One thread, one epoll loop, so that the generator costs one core at most
 * and the numbers describe the server. The framing is done here (4-byte
 * big-endian length + JSON); answers are not parsed as JSON: the protocol
 * fixes their member order ({"request_id":...,"ok":...}), so checking the
 * id and the ok flag needs only a scan of the first bytes.
 *
 * Prints one JSON object on stdout; diagnostics go to stderr. Exits 0 when
 * the run finished (even with error answers), 1 when it could not. */

#define _GNU_SOURCE 1

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 4096
#define MAX_PIPELINE 1024
#define MAX_ANSWER (64u << 20)          /* an answer larger than this is a broken server */
#define STALL_SECONDS 30                /* no answer at all for this long: give up */
#define ID_MAX 32

typedef struct conn {
        int fd;
        unsigned idx;
        /* Requests in flight, oldest first: a ring of D slots (borrowed). */
        uint64_t *sent_ns;
        uint64_t *seq;
        unsigned head, count;
        uint64_t next_seq;
        /* Bytes to send (requests not yet taken by the kernel). Owned. */
        char *wbuf;
        size_t wlen, wcap;
        /* Bytes received, not yet a whole answer. Owned. */
        unsigned char *rbuf;
        size_t rlen, rcap;
        bool want_out;
        bool answered;                  /* has had an answer: the server serves it */
} conn;

static struct {
        const char *socket_path;
        const char *action;
        const char *params;
        unsigned connections, pipeline;
        uint64_t requests;              /* 0: run for `duration` */
        double duration;
        uint64_t warmup;
} opt = { .connections = 1, .pipeline = 1, .params = NULL };

static struct {
        uint64_t issued;                /* requests written into a send buffer */
        uint64_t answered;              /* answers received, warm-up included */
        uint64_t measured;              /* answers counted in the results */
        uint64_t errors;                /* counted answers that were not ok:true or out of order */
        unsigned served;                /* connections that have had an answer */
        uint64_t t0, t_last, stop_at;   /* ns; stop_at: no new request after this (duration mode) */
        bool measuring, stopping;
        uint64_t *lat;                  /* ns, one per measured answer; owned */
        size_t n_lat, cap_lat;
        bool told_error, told_order;
} st;

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "loadgen: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(1);
}

static void *xrealloc(void *p, size_t n) {
        void *q = realloc(p, n);
        if (!q)
                die("%s", "out of memory");
        return q;
}

static void *xmalloc(size_t n) {
        void *p = malloc(n);
        if (!p)
                die("%s", "out of memory");
        return p;
}

static uint64_t parse_u64(const char *s, const char *what, uint64_t min, uint64_t max) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s || *end || *s == '-' || v < min || v > max)
                die("bad value for %s", what);
        return v;
}

static void usage(void) __attribute__((noreturn));
static void usage(void) {
        fprintf(stderr,
                "usage: loadgen --socket PATH --connections N --pipeline D\n"
                "               (--requests COUNT | --duration SEC) --action NAME\n"
                "               [--params JSON] [--warmup COUNT]\n");
        exit(2);
}

static void parse_args(int argc, char **argv) {
        static const struct option longopts[] = {
                { "socket", required_argument, NULL, 's' },
                { "connections", required_argument, NULL, 'c' },
                { "pipeline", required_argument, NULL, 'p' },
                { "requests", required_argument, NULL, 'n' },
                { "duration", required_argument, NULL, 'd' },
                { "action", required_argument, NULL, 'a' },
                { "params", required_argument, NULL, 'P' },
                { "warmup", required_argument, NULL, 'w' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
                switch (c) {
                case 's': opt.socket_path = optarg; break;
                case 'c': opt.connections = (unsigned) parse_u64(optarg, "--connections", 1, MAX_CONNECTIONS); break;
                case 'p': opt.pipeline = (unsigned) parse_u64(optarg, "--pipeline", 1, MAX_PIPELINE); break;
                case 'n': opt.requests = parse_u64(optarg, "--requests", 1, UINT64_MAX / 4); break;
                case 'd': {
                        char *end;
                        errno = 0;
                        opt.duration = strtod(optarg, &end);
                        if (errno || end == optarg || *end || !(opt.duration > 0 && opt.duration <= 86400))
                                die("bad value for %s", "--duration");
                        break;
                }
                case 'a': opt.action = optarg; break;
                case 'P': opt.params = optarg; break;
                case 'w': opt.warmup = parse_u64(optarg, "--warmup", 0, UINT64_MAX / 4); break;
                default: usage();
                }
        }
        if (optind != argc || !opt.socket_path || !opt.action || (opt.requests == 0) == (opt.duration == 0))
                usage();
        /* The action goes into the request verbatim: keep it to what the
         * protocol allows, so no escaping is needed. */
        if (strlen(opt.action) > 64 || strspn(opt.action, "abcdefghijklmnopqrstuvwxyz0123456789_.-") != strlen(opt.action))
                die("bad action name %s", opt.action);
        if (opt.params && strlen(opt.params) > (1u << 20))
                die("%s", "--params is too long");
}

static void record_latency(uint64_t ns) {
        if (st.n_lat == st.cap_lat) {
                st.cap_lat = st.cap_lat ? st.cap_lat * 2 : 65536;
                st.lat = xrealloc(st.lat, st.cap_lat * sizeof *st.lat);
        }
        st.lat[st.n_lat++] = ns;
}

static uint64_t in_flight(void) {
        return st.issued - st.answered;
}

static bool may_issue(void) {
        if (st.stopping)
                return false;
        /* Until the clock starts, requests are not counted against COUNT. */
        if (opt.requests)
                return !st.measuring || st.measured + in_flight() < opt.requests;
        return true;
}

/* Appends one request to the connection's send buffer. */
static void put_request(conn *c, uint64_t now) {
        /* {"action":"A","request_id":"cI-S","params":P} */
        size_t need = 4 + 64 + strlen(opt.action) + ID_MAX + (opt.params ? strlen(opt.params) : 0);
        unsigned slot;
        int n;

        if (c->wcap - c->wlen < need) {
                c->wcap = c->wlen + need + 4096;
                c->wbuf = xrealloc(c->wbuf, c->wcap);
        }
        if (opt.params)
                n = snprintf(c->wbuf + c->wlen + 4, need - 4,
                             "{\"action\":\"%s\",\"request_id\":\"c%u-%" PRIu64 "\",\"params\":%s}", opt.action,
                             c->idx, c->next_seq, opt.params);
        else
                n = snprintf(c->wbuf + c->wlen + 4, need - 4, "{\"action\":\"%s\",\"request_id\":\"c%u-%" PRIu64 "\"}",
                             opt.action, c->idx, c->next_seq);
        if (n < 0 || (size_t) n >= need - 4)
                die("%s", "request does not fit its buffer");
        c->wbuf[c->wlen + 0] = (char) ((unsigned) n >> 24);
        c->wbuf[c->wlen + 1] = (char) ((unsigned) n >> 16);
        c->wbuf[c->wlen + 2] = (char) ((unsigned) n >> 8);
        c->wbuf[c->wlen + 3] = (char) n;
        c->wlen += 4 + (size_t) n;

        slot = (c->head + c->count) % opt.pipeline;
        c->sent_ns[slot] = now;
        c->seq[slot] = c->next_seq++;
        c->count++;
        st.issued++;
}

/* Tops the connection up to D requests in flight. */
static void fill(conn *c, uint64_t now) {
        while (c->count < opt.pipeline && may_issue())
                put_request(c, now);
}

static void set_events(int ep, conn *c, bool want_out) {
        struct epoll_event ev = { .events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.u32 = c->idx };

        if (c->want_out == want_out)
                return;
        if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                die("epoll_ctl: %s", strerror(errno));
        c->want_out = want_out;
}

static void flush(int ep, conn *c) {
        size_t done = 0;

        while (done < c->wlen) {
                ssize_t n = send(c->fd, c->wbuf + done, c->wlen - done, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        die("send: %s", strerror(errno));
                }
                done += (size_t) n;
        }
        if (done) {
                memmove(c->wbuf, c->wbuf + done, c->wlen - done);
                c->wlen -= done;
        }
        set_events(ep, c, c->wlen > 0);
}

/* Checks one answer against the oldest request in flight: the request_id
 * must be the one sent first, and "ok" must be true. Member order is fixed
 * by the protocol, so anything else is a wrong answer too. */
static void check_answer(conn *c, const unsigned char *p, size_t len, uint64_t now) {
        static const char pre[] = "{\"request_id\":\"";
        char want[ID_MAX];
        unsigned slot = c->head;
        int wl;
        bool good = false, order_ok = false;

        if (c->count == 0)
                die("%s", "an answer nobody asked for");
        wl = snprintf(want, sizeof want, "c%u-%" PRIu64, c->idx, c->seq[slot]);
        if (len >= sizeof pre - 1 && memcmp(p, pre, sizeof pre - 1) == 0) {
                const unsigned char *id = p + sizeof pre - 1;
                size_t rest = len - (sizeof pre - 1);
                order_ok = rest > (size_t) wl && memcmp(id, want, (size_t) wl) == 0 && id[wl] == '"';
                if (order_ok) {
                        static const char ok[] = ",\"ok\":true";
                        rest -= (size_t) wl + 1;
                        good = rest >= sizeof ok - 1 && memcmp(id + wl + 1, ok, sizeof ok - 1) == 0;
                }
        }
        if (!order_ok && !st.told_order) {
                fprintf(stderr, "loadgen: answer out of order (expected %s): %.*s\n", want, (int) (len > 300 ? 300 : len),
                        (const char *) p);
                st.told_order = true;
        } else if (order_ok && !good && !st.told_error) {
                fprintf(stderr, "loadgen: error answer: %.*s\n", (int) (len > 300 ? 300 : len), (const char *) p);
                st.told_error = true;
        }

        st.answered++;
        if (!c->answered) {
                c->answered = true;
                st.served++;
        }
        if (st.measuring) {
                st.measured++;
                if (!good)
                        st.errors++;
                record_latency(now - c->sent_ns[slot]);
                st.t_last = now;
        } else if (st.answered >= opt.warmup && st.served == opt.connections) {
                /* The warm-up is over and every connection is being
                 * served (a server may accept late under load): the
                 * clock starts here. */
                st.measuring = true;
                st.t0 = st.t_last = now;
                if (opt.duration > 0)
                        st.stop_at = now + (uint64_t) (opt.duration * 1e9);
        }
        c->head = (c->head + 1) % opt.pipeline;
        c->count--;
}

/* Reads what is there (or, blocking, at least something). */
static void read_some(conn *c, bool block) {
        for (;;) {
                size_t room;
                ssize_t n;

                if (c->rcap - c->rlen < 65536) {
                        c->rcap = c->rlen + 65536 * 2;
                        c->rbuf = xrealloc(c->rbuf, c->rcap);
                }
                room = c->rcap - c->rlen;
                n = recv(c->fd, c->rbuf + c->rlen, room, block ? 0 : MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN && block)
                                die("connection %u: no answer within %d s", c->idx, STALL_SECONDS);
                        if (errno == EAGAIN)
                                return;
                        die("recv: %s", strerror(errno));
                }
                if (n == 0) {
                        fprintf(stderr, "loadgen: connection %u closed by the server", c->idx);
                        if (c->rlen > 4)
                                fprintf(stderr, ": %.*s", (int) (c->rlen - 4 > 300 ? 300 : c->rlen - 4),
                                        (const char *) c->rbuf + 4);
                        fputc('\n', stderr);
                        exit(1);
                }
                c->rlen += (size_t) n;
                if (block || (size_t) n < room)
                        return;         /* the socket is drained; skip the EAGAIN round trip */
        }
}

/* Checks and counts every whole answer in the receive buffer. */
static void take_answers(conn *c, uint64_t now) {
        size_t off = 0;

        while (c->rlen - off >= 4) {
                const unsigned char *h = c->rbuf + off;
                uint32_t len = (uint32_t) h[0] << 24 | (uint32_t) h[1] << 16 | (uint32_t) h[2] << 8 | h[3];

                if (len == 0 || len > MAX_ANSWER)
                        die("%s", "bad frame length from the server");
                if (c->rlen - off - 4 < len)
                        break;
                check_answer(c, h + 4, len, now);
                off += 4 + (size_t) len;
        }
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
}

/* Reads what is there, checks every whole answer, tops the pipeline up. */
static void on_readable(int ep, conn *c) {
        uint64_t now;

        read_some(c, false);
        now = now_ns();
        take_answers(c, now);
        if (st.measuring && opt.duration > 0 && now >= st.stop_at)
                st.stopping = true;
        fill(c, now);
        if (c->wlen)
                flush(ep, c);
}

/* One blocking round trip on a new connection before the load starts. A
 * busy server may put off accepting new connections (the agent's listener
 * runs at a lower priority than its connections), so connecting all of
 * them first and loading them together would measure that instead. */
static void handshake(conn *c) {
        const struct timeval tv = { .tv_sec = STALL_SECONDS };
        size_t done = 0;

        if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
            setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
                die("setsockopt: %s", strerror(errno));
        put_request(c, now_ns());
        while (done < c->wlen) {
                ssize_t n = send(c->fd, c->wbuf + done, c->wlen - done, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        die("send: %s", strerror(errno));
                done += (size_t) n;
        }
        c->wlen = 0;
        while (c->count > 0) {
                read_some(c, true);
                take_answers(c, now_ns());
        }
}

static int connect_to(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        if (strlen(path) >= sizeof sa.sun_path)
                die("socket path too long: %s", path);
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                die("socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                die("connect: %s", strerror(errno));
        return fd;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least q of all samples at or below it. */
static double pct_us(double q) {
        size_t rank;

        if (st.n_lat == 0)
                return 0;
        rank = (size_t) (q * (double) st.n_lat + 0.999999);
        if (rank < 1)
                rank = 1;
        if (rank > st.n_lat)
                rank = st.n_lat;
        return (double) st.lat[rank - 1] / 1000.0;
}

static void print_json_string(const char *s) {
        putchar('"');
        for (; *s; s++) {
                unsigned char ch = (unsigned char) *s;
                if (ch == '"' || ch == '\\')
                        printf("\\%c", ch);
                else if (ch < 0x20)
                        printf("\\u%04x", ch);
                else
                        putchar(ch);
        }
        putchar('"');
}

static void report(void) {
        double secs = (double) (st.t_last - st.t0) / 1e9;
        struct rusage ru;
        double cpu = 0;

        if (getrusage(RUSAGE_SELF, &ru) == 0)
                cpu = (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 + (double) ru.ru_stime.tv_sec +
                      (double) ru.ru_stime.tv_usec / 1e6;
        qsort(st.lat, st.n_lat, sizeof *st.lat, cmp_u64);
        printf("{\"action\":");
        print_json_string(opt.action);
        printf(",\"connections\":%u,\"pipeline\":%u,\"requests\":%" PRIu64 ",\"errors\":%" PRIu64
               ",\"seconds\":%.3f,\"rps\":%.0f,\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f}"
               ",\"client_cpu_s\":%.2f}\n",
               opt.connections, opt.pipeline, st.measured, st.errors, secs, secs > 0 ? (double) st.measured / secs : 0,
               pct_us(0.50), pct_us(0.90), pct_us(0.99), st.n_lat ? (double) st.lat[st.n_lat - 1] / 1000.0 : 0, cpu);
}

int main(int argc, char **argv) {
        struct epoll_event evs[256];
        conn *conns;
        uint64_t started, last_progress, last_answered = 0;
        uint64_t *ring_ns, *ring_seq;   /* owned here; each conn borrows its D slots */
        int ep;

        parse_args(argc, argv);
        /* A warm-up of zero still needs one answer to start the clock. */
        if (opt.warmup == 0)
                opt.warmup = 1;
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0)
                die("epoll_create1: %s", strerror(errno));
        conns = calloc(opt.connections, sizeof *conns);
        if (!conns)
                die("%s", "out of memory");
        /* Every connection's ring of D slots, in two blocks (N, D ≤ 4096, 1024). */
        ring_ns = xmalloc((size_t) opt.connections * opt.pipeline * sizeof *ring_ns);
        ring_seq = xmalloc((size_t) opt.connections * opt.pipeline * sizeof *ring_seq);
        for (unsigned i = 0; i < opt.connections; i++) {
                conn *c = &conns[i];
                struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };

                c->idx = i;
                c->fd = connect_to(opt.socket_path);
                c->sent_ns = ring_ns + (size_t) i * opt.pipeline;
                c->seq = ring_seq + (size_t) i * opt.pipeline;
                handshake(c);
                if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
                        die("epoll_ctl: %s", strerror(errno));
        }
        for (unsigned i = 0; i < opt.connections; i++) {
                fill(&conns[i], now_ns());
                flush(ep, &conns[i]);
        }

        started = last_progress = now_ns();
        while (st.answered < st.issued || may_issue()) {
                int n = epoll_wait(ep, evs, (int) (sizeof evs / sizeof evs[0]), 1000);
                uint64_t now;

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        die("epoll_wait: %s", strerror(errno));
                }
                for (int i = 0; i < n; i++) {
                        conn *c = &conns[evs[i].data.u32];
                        if (evs[i].events & EPOLLOUT)
                                flush(ep, c);
                        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                                on_readable(ep, c);
                }
                now = now_ns();
                if (st.measuring && opt.duration > 0 && now >= st.stop_at)
                        st.stopping = true;
                if (!st.measuring && now - started > STALL_SECONDS * 1000000000ULL) {
                        fprintf(stderr, "loadgen: warm-up not over after %d s: %u of %u connections served, %" PRIu64
                                " answers\n", STALL_SECONDS, st.served, opt.connections, st.answered);
                        return 1;
                }
                if (st.answered != last_answered) {
                        last_answered = st.answered;
                        last_progress = now;
                } else if (now - last_progress > STALL_SECONDS * 1000000000ULL) {
                        fprintf(stderr, "loadgen: no answer for %d s (%" PRIu64 " of %" PRIu64 " answered)\n", STALL_SECONDS,
                                st.answered, st.issued);
                        return 1;
                }
        }
        report();
        for (unsigned i = 0; i < opt.connections; i++) {
                close(conns[i].fd);
                free(conns[i].wbuf);
                free(conns[i].rbuf);
        }
        free(conns);
        free(ring_ns);
        free(ring_seq);
        free(st.lat);
        close(ep);
        return 0;
}
