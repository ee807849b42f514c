/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A stand-in for libapparmor's transition calls, for tests only.
 *
 * The test machines have no AppArmor, so the path a worker takes on a real
 * host (aa_is_enabled() == 1, then aa_change_hat()) cannot run there. This
 * library, put in front of libapparmor with LD_PRELOAD, answers those calls
 * as the test asks and records each one, so a test can see what the agent
 * did and in which order. It never touches /proc/<tid>/attr.
 *
 * Environment (read at each call):
 *   JABALI_SHIM_AA                 "enabled": aa_is_enabled() returns 1;
 *                                  "disabled" (or any other value): it
 *                                  returns 0 with errno ENOSYS and every
 *                                  transition fails with EINVAL, as on a
 *                                  kernel without AppArmor;
 *                                  unset or empty: every call goes to the
 *                                  real libapparmor and is still recorded.
 *   JABALI_SHIM_AA_CHANGE_HAT      outcome of aa_change_hat() and
 *                                  aa_change_hatv() when enabled: "ok"
 *                                  (the default) or an errno name (EACCES,
 *                                  ENOENT, EPERM, ECHILD, EINVAL, ...) or
 *                                  number, which the call fails with.
 *   JABALI_SHIM_AA_CHANGE_PROFILE  the same for aa_change_profile(),
 *                                  aa_change_onexec(), aa_stack_profile()
 *                                  and aa_stack_onexec(); default EPERM,
 *                                  what the kernel answers for the
 *                                  jabali-agent profile, which has no
 *                                  change_profile rule.
 *   JABALI_SHIM_LOG                file each call is appended to, one JSON
 *                                  object per line:
 *     {"call":"aa_change_hat","pid":123,"hat":"test","token_nonzero":true,
 *      "nnp":0,"threads":1,"result":0,"errno":0}
 *   "nnp" is prctl(PR_GET_NO_NEW_PRIVS) at the moment of the call (a worker
 *   must change hat before it sets no_new_privs, so 0 is expected) and
 *   "threads" the thread count (transitions are per thread: 1 is
 *   expected). The token itself is never written anywhere. A write error is
 *   ignored: the caller's result and errno are what the shim answered.
 *
 * Build: cc -shared -fPIC -o aa-shim.so aa-shim.c (no libraries needed). */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE             /* RTLD_NEXT; the build passes it, a plain cc does not */
#endif

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/apparmor.h>
#include <sys/prctl.h>
#include <unistd.h>

/* The project builds with -fvisibility=hidden; these must interpose. */
#define SHIM_EXPORT __attribute__((visibility("default")))

#define LINE_MAX_BYTES 4096
#define NAME_MAX_BYTES 256      /* longer names are cut in the log */
#define HATV_MAX 16             /* the kernel takes at most 16 names */

typedef enum shim_mode {
        SHIM_PASS,
        SHIM_ENABLED,
        SHIM_DISABLED,
} shim_mode;

static shim_mode get_mode(void) {
        const char *v = getenv("JABALI_SHIM_AA");

        if (!v || v[0] == '\0')
                return SHIM_PASS;
        if (strcmp(v, "enabled") == 0)
                return SHIM_ENABLED;
        return SHIM_DISABLED;
}

static const struct {
        const char *name;
        int value;
} errno_names[] = {
        { "EACCES", EACCES }, { "EPERM", EPERM },   { "ENOENT", ENOENT }, { "ECHILD", ECHILD },
        { "EINVAL", EINVAL }, { "ENOMEM", ENOMEM }, { "EIO", EIO },       { "ENOSYS", ENOSYS },
        { "EBUSY", EBUSY },   { "EAGAIN", EAGAIN }, { "EPROTO", EPROTO }, { "EFAULT", EFAULT },
};

/* The outcome named by `var`: 0 for "ok", else a positive errno. Anything
 * unreadable is EINVAL, so a typo in a test fails loudly rather than
 * passing as success. */
static int get_outcome(const char *var, int dflt) {
        const char *v = getenv(var);
        char *end = NULL;
        long n;

        if (!v || v[0] == '\0')
                return dflt;
        if (strcmp(v, "ok") == 0)
                return 0;
        for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++)
                if (strcmp(v, errno_names[i].name) == 0)
                        return errno_names[i].value;
        errno = 0;
        n = strtol(v, &end, 10);
        if (errno == 0 && end != v && *end == '\0' && n > 0 && n < 4096)
                return (int) n;
        return EINVAL;
}

/* ---- the log line: bounded, never fails half-way into the file */

typedef struct line {
        char buf[LINE_MAX_BYTES];
        size_t len;
        bool overflow;
} line;

static void put_raw(line *l, const char *s, size_t n) {
        if (l->overflow || n > sizeof l->buf - 2 - l->len) {  /* keep room for "}\n" */
                l->overflow = true;
                return;
        }
        memcpy(l->buf + l->len, s, n);
        l->len += n;
}

static void put(line *l, const char *s) {
        put_raw(l, s, strlen(s));
}

static void put_long(line *l, long v) {
        char num[24];
        int n = snprintf(num, sizeof num, "%ld", v);

        if (n > 0 && (size_t) n < sizeof num)
                put_raw(l, num, (size_t) n);
}

/* A JSON string. Names come from the caller, so anything goes: control
 * characters and bytes above 0x7f are written as \u00XX (the log stays
 * valid JSON even for names that are not UTF-8), and long names are cut. */
static void put_string(line *l, const char *s) {
        size_t i;

        if (!s) {
                put(l, "null");
                return;
        }
        put(l, "\"");
        for (i = 0; i < NAME_MAX_BYTES && s[i]; i++) {
                unsigned char c = (unsigned char) s[i];
                char esc[8];

                if (c == '"' || c == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char) c;
                        put_raw(l, esc, 2);
                } else if (c < 0x20 || c >= 0x7f) {
                        snprintf(esc, sizeof esc, "\\u%04x", c);
                        put_raw(l, esc, 6);
                } else
                        put_raw(l, (const char *) &c, 1);
        }
        if (s[i])
                put(l, "...");
        put(l, "\"");
}

static void put_key(line *l, const char *key) {
        put(l, ",\"");
        put(l, key);
        put(l, "\":");
}

static void begin(line *l, const char *call) {
        l->len = 0;
        l->overflow = false;
        put(l, "{\"call\":\"");
        put(l, call);
        put(l, "\"");
        put_key(l, "pid");
        put_long(l, (long) getpid());
}

static int get_nnp(void) {
        return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
}

/* Threads of this process, from /proc/self/status; -1 if unknown. */
static long get_threads(void) {
        char buf[8192];
        ssize_t n;
        int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
        const char *p;

        if (fd < 0)
                return -1;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
                return -1;
        buf[n] = '\0';
        p = strstr(buf, "\nThreads:");
        if (!p)
                return -1;
        return strtol(p + strlen("\nThreads:"), NULL, 10);
}

/* Appends the line with the result and the errno the caller sees (logged
 * as 0 on success), then restores that errno for the caller. */
static int finish(line *l, int result, bool failed, int err) {
        const char *path = getenv("JABALI_SHIM_LOG");

        put_key(l, "result");
        put_long(l, result);
        put_key(l, "errno");
        put_long(l, failed ? err : 0);
        if (l->overflow) {
                /* Cannot happen with the bounds above; still a valid line. */
                l->len = 0;
                l->overflow = false;
                put(l, "{\"call\":\"shim_error\",\"error\":\"log line too long\"");
        }
        /* put_raw() always leaves room for these two. */
        l->buf[l->len++] = '}';
        l->buf[l->len++] = '\n';

        if (path && path[0] != '\0') {
                int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
                if (fd >= 0) {
                        /* One write() with O_APPEND: lines of concurrent
                         * workers do not interleave. */
                        ssize_t w = write(fd, l->buf, l->len);
                        (void) w;
                        close(fd);
                }
        }
        errno = err;
        return result;
}

static void *real(const char *name) {
        return dlsym(RTLD_NEXT, name);
}

/* ---- the interposed calls */

SHIM_EXPORT int aa_is_enabled(void) {
        line l;
        int r, e;

        begin(&l, "aa_is_enabled");
        switch (get_mode()) {
        case SHIM_ENABLED:
                r = 1;
                e = 0;
                break;
        case SHIM_DISABLED:
                r = 0;
                e = ENOSYS;
                break;
        default: {
                int (*fn)(void) = (int (*)(void)) real("aa_is_enabled");
                errno = 0;
                r = fn ? fn() : (errno = ENOSYS, 0);
                e = errno;
        }
        }
        /* aa_is_enabled() says "no" with 0, not -1, and errno tells why. */
        return finish(&l, r, r != 1, e);
}

/* The common part of every transition call: record the state the kernel
 * would judge (no_new_privs, threads), then answer. */
static int transition(line *l, const char *outcome_var, int dflt, int (*pass)(void *), void *arg) {
        int r, e;

        put_key(l, "nnp");
        put_long(l, get_nnp());
        put_key(l, "threads");
        put_long(l, get_threads());
        switch (get_mode()) {
        case SHIM_ENABLED:
                e = get_outcome(outcome_var, dflt);
                r = e ? -1 : 0;
                break;
        case SHIM_DISABLED:
                r = -1;
                e = EINVAL;     /* what libapparmor says on a kernel without AppArmor */
                break;
        default:
                errno = 0;
                r = pass(arg);
                e = errno;
        }
        return finish(l, r, r < 0, e);
}

struct hat_args {
        const char *hat;
        unsigned long token;
};

static int pass_change_hat(void *p) {
        const struct hat_args *a = p;
        int (*fn)(const char *, unsigned long) = (int (*)(const char *, unsigned long)) real("aa_change_hat");

        if (!fn)
                return errno = ENOSYS, -1;
        return fn(a->hat, a->token);
}

SHIM_EXPORT int aa_change_hat(const char *subprofile, unsigned long magic_token) {
        struct hat_args a = { subprofile, magic_token };
        line l;
        int r;

        begin(&l, "aa_change_hat");
        put_key(&l, "hat");
        put_string(&l, subprofile);
        put_key(&l, "token_nonzero");
        put(&l, magic_token != 0 ? "true" : "false");
        r = transition(&l, "JABALI_SHIM_AA_CHANGE_HAT", 0, pass_change_hat, &a);
        explicit_bzero(&a.token, sizeof a.token);
        return r;
}

struct hatv_args {
        const char **hats;
        unsigned long token;
};

static int pass_change_hatv(void *p) {
        const struct hatv_args *a = p;
        int (*fn)(const char **, unsigned long) = (int (*)(const char **, unsigned long)) real("aa_change_hatv");

        if (!fn)
                return errno = ENOSYS, -1;
        return fn(a->hats, a->token);
}

SHIM_EXPORT int aa_change_hatv(const char *subprofiles[], unsigned long token) {
        struct hatv_args a = { subprofiles, token };
        line l;
        int r;

        begin(&l, "aa_change_hatv");
        put_key(&l, "hats");
        if (!subprofiles)
                put(&l, "null");
        else {
                put(&l, "[");
                for (size_t i = 0; i < HATV_MAX && subprofiles[i]; i++) {
                        if (i)
                                put(&l, ",");
                        put_string(&l, subprofiles[i]);
                }
                put(&l, "]");
        }
        put_key(&l, "token_nonzero");
        put(&l, token != 0 ? "true" : "false");
        r = transition(&l, "JABALI_SHIM_AA_CHANGE_HAT", 0, pass_change_hatv, &a);
        explicit_bzero(&a.token, sizeof a.token);
        return r;
}

struct profile_args {
        const char *name;       /* the real function's symbol */
        const char *profile;
};

static int pass_profile(void *p) {
        const struct profile_args *a = p;
        int (*fn)(const char *) = (int (*)(const char *)) real(a->name);

        if (!fn)
                return errno = ENOSYS, -1;
        return fn(a->profile);
}

static int profile_call(const char *name, const char *profile) {
        struct profile_args a = { name, profile };
        line l;

        begin(&l, name);
        put_key(&l, "profile");
        put_string(&l, profile);
        return transition(&l, "JABALI_SHIM_AA_CHANGE_PROFILE", EPERM, pass_profile, &a);
}

SHIM_EXPORT int aa_change_profile(const char *profile) {
        return profile_call("aa_change_profile", profile);
}

SHIM_EXPORT int aa_change_onexec(const char *profile) {
        return profile_call("aa_change_onexec", profile);
}

SHIM_EXPORT int aa_stack_profile(const char *profile) {
        return profile_call("aa_stack_profile", profile);
}

SHIM_EXPORT int aa_stack_onexec(const char *profile) {
        return profile_call("aa_stack_onexec", profile);
}
