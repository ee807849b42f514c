/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_SPAWN_H
#define JABALI_SPAWN_H

/* Running a program: argv only, a scrubbed environment, a timeout and
 * bounded captured output. This is how a module runs a service's checker
 * (`/usr/sbin/nginx -t`) or tool.
 *
 *   const char *const argv[] = { "/usr/sbin/nginx", "-t", "-q", NULL };
 *   jb_spawn_opts o = { .argv = argv, .timeout_ms = 10000 };
 *   jb_spawn_result r;
 *   if (jb_spawn_run(&o, &r, err) < 0)
 *           return -1;                       // could not run it at all
 *   if (!jb_spawn_succeeded(&r)) {
 *           jb_spawn_result_to_err(&r, err); // SERVICE_FAILED + stderr excerpt
 *           jb_spawn_result_free(&r);
 *           return -1;
 *   }
 *   jb_spawn_result_free(&r);
 *
 * What the program gets:
 *  - argv exactly as given; argv[0] is the absolute path that is executed.
 *    No shell is ever involved, no PATH search is done.
 *  - The environment PATH=/usr/sbin:/usr/bin:/sbin:/bin and LANG=C.UTF-8,
 *    plus opts->env; nothing of the caller's environment.
 *  - stdin: opts->stdin_data through a pipe (closed once written), or
 *    /dev/null. stdout and stderr: pipes read by the caller.
 *  - No other descriptor (everything from 3 up is closed), an empty signal
 *    mask, every signal at its default action (except glibc's two internal
 *    signals, 32 and 33, which posix_spawn leaves ignored), its own process
 *    group (so a timeout kills whatever it started in that group), the
 *    working directory opts->cwd or "/".
 *
 * The caller's process must not reap children it did not start itself
 * (waitpid(-1, ...)) and must not set SIGCHLD to SIG_IGN while a program
 * runs: the exit status would be lost. No SIGCHLD handler is needed or
 * used; SIGCHLD may be blocked. SIGPIPE is not raised in the caller when the
 * program does not read its stdin. Safe to use from several threads. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jabali/error.h>
#include <jabali/visibility.h>

/* Default and largest per-stream capture (opts->max_output). */
#define JB_SPAWN_OUTPUT_DEFAULT (64u * 1024u)
#define JB_SPAWN_OUTPUT_MAX (64u * 1024u * 1024u)
/* At most this many opts->env entries. */
#define JB_SPAWN_ENV_MAX 64

typedef struct jb_spawn_opts {
        /* NULL-terminated; argv[0] must be an absolute path. Borrowed. */
        const char *const *argv;
        /* NULL, or a NULL-terminated list of "KEY=VALUE" added to the base
         * environment; KEY is [A-Za-z_][A-Za-z0-9_]*. A KEY of the base
         * (PATH, LANG) replaces the base value; a KEY given twice is refused.
         * Borrowed. */
        const char *const *env;
        /* Working directory of the program; NULL means "/". */
        const char *cwd;
        /* Wall-clock limit in milliseconds, 0 = none. When it passes, the
         * program's process group is killed with SIGKILL. */
        uint64_t timeout_ms;
        /* Bytes kept per stream (stdout, stderr); 0 = JB_SPAWN_OUTPUT_DEFAULT,
         * at most JB_SPAWN_OUTPUT_MAX. Output beyond it is read and dropped,
         * and the stream is flagged truncated. */
        size_t max_output;
        /* Bytes written to the program's stdin, then stdin is closed. NULL =
         * stdin is /dev/null. The program may exit without reading them all. */
        const void *stdin_data;
        size_t stdin_len;
} jb_spawn_opts;

typedef struct jb_spawn_result {
        /* The exit status 0..255 when the program exited, -1 when a signal
         * ended it. */
        int exit_code;
        /* The signal that ended it (SIGKILL after a timeout), 0 when it exited. */
        int term_signal;
        /* The timeout passed and the process group was killed. */
        bool timed_out;
        /* Captured output, owned by the result: always non-NULL after a
         * successful jb_spawn_run, NUL-terminated, *_len bytes (the output
         * itself may contain NULs). */
        char *stdout_data;
        size_t stdout_len;
        bool stdout_truncated;
        char *stderr_data;
        size_t stderr_len;
        bool stderr_truncated;
        /* A copy of argv[0], for messages. Owned by the result. */
        char *program;
} jb_spawn_result;

/* Runs opts->argv and waits until it has ended (and been reaped) and its
 * output pipes are closed, or the timeout has passed. After the program
 * itself exits, output still coming from something it left behind is read
 * for at most one more second (bounded by the timeout), then the pipes are
 * closed; such leftovers are not killed, so a program that starts a daemon
 * works as expected.
 *
 * Returns 0 when the program ran — whatever its exit status; look at *ret
 * (jb_spawn_succeeded) — and fills *ret, which the caller releases with
 * jb_spawn_result_free. Returns -1 when it could not be run: INVALID_PARAMS
 * (no argv, relative argv[0], bad env entry, too large max_output),
 * NOT_FOUND (argv[0] or cwd does not exist), INTERNAL (argv[0] is not an
 * executable file; other failures, with strerror). On -1, *ret is zeroed (freeing it is harmless) and no
 * process is left behind. */
JB_EXPORT int jb_spawn_run(const jb_spawn_opts *opts, jb_spawn_result *ret, jb_err *err);

/* Streaming and cancellation, for long work (a backup) that a caller
 * watches as it goes and may stop.
 *
 *   int pp[2]; pipe2(pp, O_CLOEXEC);       // a producer feeding a consumer
 *   jb_spawn_io dump = { .stdout_fd = pp[1] }, store = { .stdin_fd = pp[0],
 *           .on_stdout_line = progress, .line_arg = job, .cancel_fd = stop };
 *   // one thread: jb_spawn_run_io(&dump_opts, &dump, &rd, err);
 *   // another:    jb_spawn_run_io(&store_opts, &store, &rs, err);
 *
 * Both exit statuses are the caller's to check: a producer that died
 * leaves its consumer a short, clean end of file. */
#define JB_SPAWN_CANCEL_GRACE_MS 10000u

typedef struct jb_spawn_io {
        /* A descriptor (above 2) that becomes the program's stdin, instead
         * of /dev/null or opts->stdin_data (giving both is refused). 0 = none.
         * Given: jb_spawn_run_io closes it in every case, once the program
         * started (so a pipe's writer sees the reader go when it exits). */
        int stdin_fd;
        /* A descriptor (above 2) that becomes the program's stdout, which is
         * then not captured. 0 = none. Given, like stdin_fd. */
        int stdout_fd;
        /* Called with each line of stdout as it arrives, without its
         * newline, NUL-terminated (the line may hold other NULs: use len).
         * A line longer than opts->max_output comes in pieces of that size.
         * The result's stdout_data is then empty. NULL = capture as usual.
         * Runs on the calling thread, inside jb_spawn_run_io. */
        void (*on_stdout_line)(const char *line, size_t len, void *arg);
        void *line_arg;
        /* A descriptor (above 2) the caller makes readable to stop the
         * program: its process group gets SIGTERM (or cancel_signal), and SIGKILL after
         * cancel_grace_ms (0 = JB_SPAWN_CANCEL_GRACE_MS) if it is still
         * there. Borrowed; never read. 0 = none. */
        int cancel_fd;
        uint64_t cancel_grace_ms;
        /* The signal sent first instead of SIGTERM (0 = SIGTERM); restic,
         * for one, cleans up its lock on SIGINT only. */
        int cancel_signal;
        /* Out: SIGTERM was sent because cancel_fd became readable. */
        bool cancelled;
} jb_spawn_io;

/* jb_spawn_run with the jb_spawn_io additions; the same returns. On -1
 * the given descriptors are closed too. */
JB_EXPORT int jb_spawn_run_io(const jb_spawn_opts *opts, jb_spawn_io *io, jb_spawn_result *ret, jb_err *err);

/* Frees what the result owns and zeroes it. Accepts NULL and a zeroed
 * result; safe to call twice. */
JB_EXPORT void jb_spawn_result_free(jb_spawn_result *r);

/* True when the program exited with status 0 and did not time out. */
JB_EXPORT bool jb_spawn_succeeded(const jb_spawn_result *r);

/* Turns an unsuccessful result into SERVICE_FAILED with a message such as
 * "/usr/sbin/nginx: exited with status 1: nginx: [emerg] unknown directive
 * ..." — the program, how it ended ("exited with status N", "killed by
 * signal N", "timed out") and the first lines of stderr (of stdout when
 * stderr is empty), at most 3 lines and 240 bytes, with control characters
 * and invalid UTF-8 replaced. Always returns -1, also for a successful
 * result (then the message says so), so it reads as
 * `return jb_spawn_result_to_err(&r, err);`. */
JB_EXPORT int jb_spawn_result_to_err(const jb_spawn_result *r, jb_err *err);

#endif
