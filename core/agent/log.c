/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Operational logging: journal or stderr, bounded and injection-safe. */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* The CODE_FILE/CODE_LINE libsystemd would add point into this file, which
 * tells the reader nothing. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "log.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
#define ERRNO_SUFFIX_MAX 128

static struct {
        char ident[LOG_IDENT_MAX];
        int level;
        bool journal_found;     /* probed once by log_setup() */
        bool force_stderr;
} state = {
        .ident = "jabali-agent",
        .level = LOG_INFO,
};

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg",
        [LOG_ALERT] = "alert",
        [LOG_CRIT] = "critical",
        [LOG_ERR] = "error",
        [LOG_WARNING] = "warning",
        [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",
        [LOG_DEBUG] = "debug",
};

/* Control characters would let a caller-supplied string start a forged
 * line (or move the terminal's cursor); bytes >= 0x80 are left alone. */
static void sanitize(char *s, size_t len) {
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c < 0x20 || c == 0x7f)
                        s[i] = '?';
        }
}

/* Copies at most size-1 bytes of src, sanitized; returns the length. */
static size_t copy_sanitized(char *dst, size_t size, const char *src) {
        size_t n = strnlen(src, size - 1);

        memcpy(dst, src, n);
        dst[n] = '\0';
        sanitize(dst, n);
        return n;
}

/* Marks a cut string with "..." at the end of a buffer of `size` bytes
 * holding size-1 bytes, without leaving half a UTF-8 sequence before it. */
static size_t mark_truncated(char *buf, size_t size) {
        size_t end = size - 1 - 3;

        for (unsigned i = 0; i < 3 && end > 0 && ((unsigned char) buf[end] & 0xC0) == 0x80; i++)
                end--;
        memcpy(buf + end, "...", 4);
        return end + 3;
}

void log_setup(const char *ident) {
        int saved = errno;

        if (ident && ident[0] != '\0')
                (void) copy_sanitized(state.ident, sizeof state.ident, ident);
        state.journal_found = access(JOURNAL_SOCKET, W_OK) == 0;
        errno = saved;
}

void log_set_level(int level) {
        if (level < LOG_EMERG)
                level = LOG_EMERG;
        if (level > LOG_DEBUG)
                level = LOG_DEBUG;
        state.level = level;
}

int log_get_level(void) {
        return state.level;
}

void log_set_target_stderr(bool force) {
        state.force_stderr = force;
}

bool log_target_is_journal(void) {
        return state.journal_found && !state.force_stderr;
}

static void write_all(int fd, const char *p, size_t len) {
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return;         /* nowhere left to report it */
                }
                p += n;
                len -= (size_t) n;
        }
}

static void emit_stderr(int level, const char *rid, const char *msg, size_t msg_len) {
        char line[LOG_IDENT_MAX + 64 + LOG_REQUEST_ID_MAX + LOG_MESSAGE_MAX];
        char id[LOG_REQUEST_ID_MAX + 1];
        int n;

        if (rid)
                (void) copy_sanitized(id, sizeof id, rid);
        n = snprintf(line, sizeof line, "%s[%ld]: %s: %s%s%s", state.ident, (long) getpid(),
                     level_names[level], rid ? "[" : "", rid ? id : "", rid ? "] " : "");
        /* The sizes above make the header fit; stay safe if they ever do not. */
        if (n < 0 || (size_t) n >= sizeof line - msg_len - 1)
                return;
        memcpy(line + n, msg, msg_len);
        line[(size_t) n + msg_len] = '\n';
        write_all(STDERR_FILENO, line, (size_t) n + msg_len + 1);
}

static bool emit_journal(int level, const char *rid, const char *field, size_t field_len) {
        char prio[sizeof "PRIORITY=" + 1], ident[sizeof "SYSLOG_IDENTIFIER=" + LOG_IDENT_MAX];
        char id[sizeof "REQUEST_ID=" + LOG_REQUEST_ID_MAX];
        struct iovec iov[4];
        int n = 0;

        iov[n++] = (struct iovec) { .iov_base = (void *) field, .iov_len = field_len };
        (void) snprintf(prio, sizeof prio, "PRIORITY=%d", level);
        iov[n++] = (struct iovec) { .iov_base = prio, .iov_len = strlen(prio) };
        (void) snprintf(ident, sizeof ident, "SYSLOG_IDENTIFIER=%s", state.ident);
        iov[n++] = (struct iovec) { .iov_base = ident, .iov_len = strlen(ident) };
        if (rid) {
                size_t p = strlen("REQUEST_ID=");
                memcpy(id, "REQUEST_ID=", p);
                p += copy_sanitized(id + p, sizeof id - p, rid);
                iov[n++] = (struct iovec) { .iov_base = id, .iov_len = p };
        }
        return sd_journal_sendv(iov, n) >= 0;
}

_printf_(4, 0)
static void log_dispatch(int level, const char *rid, const char *suffix, const char *fmt, va_list ap) {
        /* "MESSAGE=" sits in front of the text so that the journal field
         * needs no second copy. */
        static const char prefix[] = "MESSAGE=";
        char buf[sizeof prefix - 1 + LOG_MESSAGE_MAX];
        char *msg = buf + sizeof prefix - 1;
        size_t suffix_len = suffix ? strlen(suffix) : 0, room = LOG_MESSAGE_MAX - suffix_len, len;
        int n;

        memcpy(buf, prefix, sizeof prefix - 1);
        n = vsnprintf(msg, room, fmt, ap);
        if (n < 0)
                len = copy_sanitized(msg, room, "(unformattable log message)");
        else if ((size_t) n >= room)
                len = mark_truncated(msg, room);
        else
                len = (size_t) n;
        memcpy(msg + len, suffix ? suffix : "", suffix_len + 1);
        len += suffix_len;
        sanitize(msg, len);

        if (log_target_is_journal() && emit_journal(level, rid, buf, sizeof prefix - 1 + len))
                return;
        emit_stderr(level, rid, msg, len);
}

void log_full(int level, const char *request_id, const char *fmt, ...) {
        int saved = errno;
        va_list ap;

        level = LOG_PRI(level);
        if (level > state.level)
                return;
        va_start(ap, fmt);
        log_dispatch(level, request_id, NULL, fmt, ap);
        va_end(ap);
        errno = saved;
}

int log_full_errno(int level, int error, const char *request_id, const char *fmt, ...) {
        char suffix[ERRNO_SUFFIX_MAX] = "";
        int saved = errno, e;
        va_list ap;

        /* -INT_MIN does not exist; no errno is anywhere near it anyway. */
        e = error == INT_MIN ? INT_MAX : error < 0 ? -error : error;
        level = LOG_PRI(level);
        if (level > state.level)
                return -e;
        if (e != 0) {
                /* %m is glibc's thread-safe strerror and needs no feature macro. */
                errno = e;
                (void) snprintf(suffix, sizeof suffix, ": %m");
        }
        va_start(ap, fmt);
        log_dispatch(level, request_id, suffix, fmt, ap);
        va_end(ap);
        errno = saved;
        return -e;
}
