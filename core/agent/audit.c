/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The audit trail: an append-only JSON Lines file and the journal. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json_object.h>
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "audit.h"
#include "utf8.h"
#include "util.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
#define JOURNAL_IDENT "jabali-agent-audit"
/* Bytes kept of one journal field value; records stay small whatever the
 * strings hold. The file sink keeps everything. */
#define JOURNAL_VALUE_MAX 1024
#define JOURNAL_FIELDS_MAX 20
#define JOURNAL_NAME_MAX 24     /* longest field name below, with room to spare */

struct audit {
        int fd;                 /* the file sink, or -1 */
        char *path;             /* owned; NULL without a file sink */
        bool fsync_always;
        bool journal;
        bool torn;              /* a write stopped part-way: the next record starts with '\n' */
        bool defer_sync;        /* fsync_always: the caller syncs with audit_sync() */
        bool dirty;             /* records written since the last sync */
};

/* Writes everything, retrying EINTR and short writes. For a regular file
 * opened O_APPEND the first write(2) normally takes the whole line at once,
 * which is what keeps concurrent appenders from interleaving. Stores the
 * bytes written in *ret_done. Returns 0 or -errno. */
static int write_full(int fd, const char *p, size_t len, size_t *ret_done) {
        size_t done = 0;

        while (done < len) {
                ssize_t n = write(fd, p + done, len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        *ret_done = done;
                        return -errno;
                }
                if (n == 0) {
                        *ret_done = done;
                        return -EIO;
                }
                done += (size_t) n;
        }
        *ret_done = done;
        return 0;
}

/* Appends '\n' when the file's last byte is something else. A separate
 * read-only descriptor is used because the sink is O_WRONLY; it must name
 * the same inode, or the path was swapped under us. Returns 1 when repaired. */
static int repair_torn_line(int fd, const char *path, const struct stat *st, jb_err *err) {
        _cleanup_close_ int rfd = -1;
        struct stat rst;
        size_t done;
        ssize_t n;
        char c;
        int r;

        if (st->st_size <= 0)
                return 0;
        rfd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
        if (rfd < 0)
                return jb_err_set(err, JB_E_INTERNAL, "cannot read audit log '%s': %s", path, strerror(errno));
        if (fstat(rfd, &rst) < 0)
                return jb_err_set(err, JB_E_INTERNAL, "cannot stat audit log '%s': %s", path, strerror(errno));
        if (rst.st_dev != st->st_dev || rst.st_ino != st->st_ino)
                return jb_err_set(err, JB_E_INTERNAL, "audit log '%s' was replaced while being opened", path);

        do
                n = pread(rfd, &c, 1, st->st_size - 1);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return jb_err_set(err, JB_E_INTERNAL, "cannot read audit log '%s': %s", path, strerror(errno));
        if (n == 0 || c == '\n')        /* n == 0: truncated meanwhile; nothing to repair */
                return 0;

        r = write_full(fd, "\n", 1, &done);
        if (r < 0)
                return jb_err_set(err, JB_E_INTERNAL, "cannot repair torn last line of audit log '%s': %s",
                                  path, strerror(-r));
        return 1;
}

/* With fsync_always the file's directory entry must be durable too, or a
 * crash right after creating it could lose the file with its records. */
static int sync_parent(const char *path, jb_err *err) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int dfd = -1;
        const char *slash = strrchr(path, '/');

        if (!slash)
                dir = strdup(".");
        else if (slash == path)
                dir = strdup("/");
        else
                dir = strndup(path, (size_t) (slash - path));
        if (!dir)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || (fsync(dfd) < 0 && errno != EINVAL))
                return jb_err_set(err, JB_E_INTERNAL, "cannot sync the directory of audit log '%s': %s",
                                  path, strerror(errno));
        return 0;
}

/* Opens the sink file. Returns 0 or 1 (torn line repaired) with the
 * descriptor in *ret_fd, or -1 with err. */
static int open_file(const char *path, bool fsync_always, int *ret_fd, jb_err *err) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        int flags, r;

        /* O_NONBLOCK: a FIFO planted at the path must not hang the daemon
         * in open(); anything but a regular file is refused just below. */
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0600);
        if (fd < 0) {
                int e = errno;
                if (e == ELOOP)
                        return jb_err_set(err, JB_E_INTERNAL,
                                          "audit log '%s' is a symbolic link; refusing to follow it", path);
                if (e == ENOENT)
                        return jb_err_set(err, JB_E_INTERNAL,
                                          "cannot open audit log '%s': its directory does not exist", path);
                if (e == ENXIO)         /* a FIFO without a reader */
                        return jb_err_set(err, JB_E_INTERNAL, "audit log '%s' is not a regular file", path);
                return jb_err_set(err, JB_E_INTERNAL, "cannot open audit log '%s': %s", path, strerror(e));
        }
        if (fstat(fd, &st) < 0)
                return jb_err_set(err, JB_E_INTERNAL, "cannot stat audit log '%s': %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return jb_err_set(err, JB_E_INTERNAL, "audit log '%s' is not a regular file", path);
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
                return jb_err_set(err, JB_E_INTERNAL, "cannot set up audit log '%s': %s", path, strerror(errno));

        r = repair_torn_line(fd, path, &st, err);
        if (r < 0)
                return r;
        if (fsync_always && sync_parent(path, err) < 0)
                return -1;
        *ret_fd = TAKE_FD(fd);
        return r;
}

int audit_open(audit **ret, const char *path, bool fsync_always, bool journal, jb_err *err) {
        audit *a;
        int r = 0;

        if (!ret)
                return jb_err_set(err, JB_E_INTERNAL, "audit_open: no return pointer");
        a = calloc(1, sizeof *a);
        if (!a)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        a->fd = -1;
        a->fsync_always = fsync_always;

        if (path && path[0] != '\0') {
                a->path = strdup(path);
                if (!a->path) {
                        jb_err_set(err, JB_E_INTERNAL, "out of memory");
                        goto fail;
                }
                r = open_file(path, fsync_always, &a->fd, err);
                if (r < 0)
                        goto fail;
        }
        /* sd_journal_*() report success when journald is absent, so the
         * socket is probed instead. */
        a->journal = journal && access(JOURNAL_SOCKET, W_OK) == 0;

        *ret = a;
        return r;
fail:
        audit_close(a);
        return -1;
}

int audit_reopen(audit *a, jb_err *err) {
        int fd = -1, r;

        if (!a)
                return jb_err_set(err, JB_E_INTERNAL, "audit_reopen: no audit handle");
        if (!a->path)
                return 0;
        r = open_file(a->path, a->fsync_always, &fd, err);
        if (r < 0)
                return r;       /* keep writing to the old file rather than nowhere */
        safe_close(a->fd);
        a->fd = fd;
        /* A torn line in the old file stays there; open_file() has checked the new one. */
        a->torn = false;
        return r;
}

void audit_close(audit *a) {
        if (!a)
                return;
        safe_close(a->fd);
        free(a->path);
        free(a);
}

int audit_fd(const audit *a) {
        return a ? a->fd : -1;
}

bool audit_has_journal(const audit *a) {
        return a && a->journal;
}

/* ---- the record ---- */

static int add(json_object *o, const char *key, json_object *v) {
        if (!v)
                return -1;
        /* Keys are literals and each is added once, in order. */
        if (json_object_object_add_ex(o, key, v, JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY) < 0) {
                json_object_put(v);
                return -1;
        }
        return 0;
}

static int add_string(json_object *o, const char *key, const char *value) {
        return value ? add(o, key, json_object_new_string(value)) : 0;
}

/* A borrowed object gets a reference of its own, dropped with the record. */
static int add_borrowed(json_object *o, const char *key, json_object *value) {
        return value ? add(o, key, json_object_get(value)) : 0;
}

static int format_time(char *buf, size_t size) {
        struct timespec ts;
        struct tm tm;
        size_t n;

        if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || !gmtime_r(&ts.tv_sec, &tm))
                return -1;
        n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        if (n == 0 || snprintf(buf + n, size - n, ".%06ldZ", ts.tv_nsec / 1000L) >= (int) (size - n))
                return -1;
        return 0;
}

static bool is_request(const audit_record *r) {
        return streq(r->event, "request");
}

static json_object *build_record(const audit_record *r) {
        json_object *o = json_object_new_object(), *peer;
        bool req = is_request(r);
        char when[64];

        if (!o)
                return NULL;
        if (format_time(when, sizeof when) < 0)
                goto fail;
        peer = json_object_new_object();
        if (!peer)
                goto fail;
        if (add(peer, "pid", json_object_new_int64(r->pid)) < 0 ||
            add(peer, "uid", json_object_new_int64(r->uid)) < 0 ||
            add(peer, "gid", json_object_new_int64(r->gid)) < 0) {
                json_object_put(peer);
                goto fail;
        }

        if (add_string(o, "time", when) < 0 ||
            add_string(o, "event", r->event) < 0 ||
            add_string(o, "request_id", r->request_id) < 0 ||
            add_string(o, "action", r->action) < 0 ||
            add_string(o, "module", r->module) < 0 ||
            add(o, "peer", peer) < 0 ||
            add_borrowed(o, "actor", r->actor) < 0 ||
            add_string(o, "target", r->target) < 0 ||
            add_borrowed(o, "params", r->params) < 0 ||
            add_string(o, "result", r->result) < 0 ||
            add_string(o, "error", r->error) < 0)
                goto fail;
        if ((req || r->changed) && add(o, "changed", json_object_new_boolean(r->changed)) < 0)
                goto fail;
        if ((req || r->dry_run) && add(o, "dry_run", json_object_new_boolean(r->dry_run)) < 0)
                goto fail;
        if ((req || r->duration_usec > 0) && add(o, "duration_us", json_object_new_uint64(r->duration_usec)) < 0)
                goto fail;
        if (add_string(o, "hat", r->hat) < 0 ||
            add_string(o, "confinement", r->confinement) < 0)
                goto fail;
        return o;
fail:
        json_object_put(o);
        return NULL;
}

/* Builds the line to append: an optional leading '\n', the JSON text with
 * every byte that is not part of well-formed UTF-8 replaced by U+FFFD, and
 * '\n'. json-c copies such bytes verbatim, and only ever inside string
 * literals (all JSON syntax is ASCII, and an ASCII byte never belongs to an
 * ill-formed sequence), so the replacement keeps the JSON intact. Returns
 * a buffer owned by the caller, or NULL. */
static char *make_line(const char *json, size_t len, bool lead_newline, size_t *ret_len) {
        const unsigned char *s = (const unsigned char *) json;
        size_t need = 0, pos = 0, k;
        char *line;

        if (len > (SIZE_MAX - 2) / 3)
                return NULL;
        for (size_t i = 0; i < len; i += k) {
                k = utf8_seq_len(s + i, len - i);
                need += k ? k : 3;
                if (k == 0)
                        k = 1;
        }
        line = malloc(need + 2);
        if (!line)
                return NULL;
        if (lead_newline)
                line[pos++] = '\n';
        for (size_t i = 0; i < len; i += k) {
                k = utf8_seq_len(s + i, len - i);
                if (k == 0) {
                        memcpy(line + pos, "\xEF\xBF\xBD", 3);
                        pos += 3;
                        k = 1;
                } else {
                        memcpy(line + pos, json + i, k);
                        pos += k;
                }
        }
        line[pos++] = '\n';
        *ret_len = pos;
        return line;
}

static int write_file(audit *a, const audit_record *r, jb_err *err) {
        _cleanup_free_ char *line = NULL;
        json_object *o;
        const char *json;
        size_t json_len, line_len = 0, done;
        int e;

        o = build_record(r);
        if (!o)
                return jb_err_set(err, JB_E_INTERNAL, "cannot build audit record: out of memory");
        json = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                                 &json_len);
        if (json)
                line = make_line(json, json_len, a->torn, &line_len);
        json_object_put(o);     /* frees `json` too */
        if (!line)
                return jb_err_set(err, JB_E_INTERNAL, "cannot build audit record: out of memory");

        e = write_full(a->fd, line, line_len, &done);
        if (e < 0) {
                /* Part of a line is in the file: the next record must not
                 * be glued to it. */
                if (done > 0)
                        a->torn = true;
                return jb_err_set(err, JB_E_INTERNAL, "cannot write audit log '%s': %s", a->path, strerror(-e));
        }
        a->torn = false;
        if (!a->fsync_always)
                return 0;
        if (a->defer_sync) {
                a->dirty = true;
                return 0;
        }
        if (fdatasync(a->fd) < 0)
                return jb_err_set(err, JB_E_INTERNAL, "cannot sync audit log '%s': %s", a->path, strerror(errno));
        return 0;
}

void audit_set_deferred_sync(audit *a, bool on) {
        if (a)
                a->defer_sync = on;
}

bool audit_sync_pending(const audit *a) {
        return a && a->dirty;
}

int audit_sync(audit *a, jb_err *err) {
        if (!a || !a->dirty)
                return 0;
        a->dirty = false;
        if (a->fd >= 0 && fdatasync(a->fd) < 0)
                return jb_err_set(err, JB_E_INTERNAL, "cannot sync audit log '%s': %s", a->path, strerror(errno));
        return 0;
}

/* ---- the journal ---- */

typedef struct jfields {
        struct iovec iov[JOURNAL_FIELDS_MAX];
        int n;
        size_t used;
        char buf[JOURNAL_FIELDS_MAX * (JOURNAL_NAME_MAX + 1 + JOURNAL_VALUE_MAX + 1)];
} jfields;

/* Appends NAME=value, the value cut at JOURNAL_VALUE_MAX bytes. */
static void jf_add(jfields *f, const char *name, const char *value) {
        size_t room = sizeof f->buf - f->used;
        int n;

        if (!value || f->n >= JOURNAL_FIELDS_MAX)
                return;
        n = snprintf(f->buf + f->used, room, "%s=%.*s", name, JOURNAL_VALUE_MAX, value);
        if (n < 0 || (size_t) n >= room)
                return;
        f->iov[f->n++] = (struct iovec) { .iov_base = f->buf + f->used, .iov_len = (size_t) n };
        f->used += (size_t) n + 1;
}

static void jf_add_u64(jfields *f, const char *name, uint64_t v) {
        char s[24];

        (void) snprintf(s, sizeof s, "%" PRIu64, v);
        jf_add(f, name, s);
}

static int send_journal(const audit_record *r) {
        _cleanup_free_ jfields *f = calloc(1, sizeof(jfields));  /* 20 KiB: too much for the stack */
        bool req = is_request(r), ok = r->result && streq(r->result, "ok");
        char msg[2 * 128 + 16];

        if (!f)
                return -ENOMEM;
        (void) snprintf(msg, sizeof msg, "audit %.128s%s%.128s", r->action ? r->action : r->event,
                        r->result ? " " : "", r->result ? r->result : "");
        jf_add(f, "MESSAGE", msg);
        jf_add(f, "PRIORITY", ok ? "6" : "5");     /* LOG_INFO, LOG_NOTICE */
        jf_add(f, "SYSLOG_IDENTIFIER", JOURNAL_IDENT);
        jf_add(f, "JABALI_EVENT", r->event);
        jf_add(f, "REQUEST_ID", r->request_id);
        jf_add(f, "JABALI_ACTION", r->action);
        jf_add(f, "JABALI_MODULE", r->module);
        jf_add_u64(f, "JABALI_PEER_UID", r->uid);
        jf_add_u64(f, "JABALI_PEER_GID", r->gid);
        jf_add_u64(f, "JABALI_PEER_PID", (uint64_t) (r->pid < 0 ? 0 : r->pid));
        jf_add(f, "JABALI_TARGET", r->target);
        jf_add(f, "JABALI_RESULT", r->result);
        jf_add(f, "JABALI_ERROR", r->error);
        if (req || r->changed)
                jf_add(f, "JABALI_CHANGED", r->changed ? "true" : "false");
        if (req || r->dry_run)
                jf_add(f, "JABALI_DRY_RUN", r->dry_run ? "true" : "false");
        if (req || r->duration_usec > 0)
                jf_add_u64(f, "JABALI_DURATION_US", r->duration_usec);
        jf_add(f, "JABALI_HAT", r->hat);
        jf_add(f, "JABALI_CONFINEMENT", r->confinement);
        return sd_journal_sendv(f->iov, f->n);
}

int audit_write(audit *a, const audit_record *r, jb_err *err) {
        int q;

        if (!a || !r || !r->event)
                return jb_err_set(err, JB_E_INTERNAL, "audit record without an event");
        if (a->fd >= 0 && write_file(a, r, err) < 0)
                return -1;
        if (!a->journal)
                return 0;
        q = send_journal(r);
        /* The file is the record of truth; only a journal-only setup
         * depends on the journal taking it. */
        if (q < 0 && a->fd < 0)
                return jb_err_set(err, JB_E_INTERNAL, "cannot send audit record to the journal: %s", strerror(-q));
        return 0;
}
