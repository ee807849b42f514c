/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_LOG_H
#define JABALI_LOG_H

/* Operational logging of the daemon (master and workers), design.md §6.
 *
 * Lines go to the journal when journald is there, else to stderr. The
 * choice is made once, in log_setup(): sd_journal_*() silently return 0
 * when journald is absent, so there is no failure to fall back on later.
 *
 * Every message is formatted into a bounded stack buffer (LOG_MESSAGE_MAX
 * bytes, cut with "..." when longer), control characters are replaced by
 * '?' so that caller-supplied text cannot forge lines, and nothing is
 * allocated. Messages above the current level are dropped before they are
 * formatted. All functions preserve errno. Not thread-safe: the master is
 * single-threaded and each worker serves one request at a time.
 *
 * On stderr a line reads
 *     <ident>[<pid>]: <level>: [<request_id>] message
 * (the bracketed request_id only when one is given), written with a
 * single write(2). In the journal the same message carries MESSAGE=,
 * PRIORITY=, SYSLOG_IDENTIFIER= and, when given, REQUEST_ID=. */

#include <stdbool.h>
#include <syslog.h>

#include "util.h"

/* Bytes of a formatted message, the terminating NUL included. */
#define LOG_MESSAGE_MAX 2048
/* Longest identifier kept by log_setup(); a longer one is cut. */
#define LOG_IDENT_MAX 64
/* Longest request_id shown; a longer one is cut (the protocol allows 128). */
#define LOG_REQUEST_ID_MAX 128

/* Sets the identifier (e.g. "jabali-agent"; NULL keeps the program name)
 * and probes for the journal socket. Call it once at start-up, and again in
 * a worker after exec if its ident differs. Before it is called, logs go to
 * stderr under the program name. */
void log_setup(const char *ident);

/* The most verbose level that is still logged: LOG_EMERG..LOG_DEBUG from
 * <syslog.h>. Out-of-range values are clamped. The default is LOG_INFO. */
void log_set_level(int level);
int log_get_level(void);

/* With force, every line goes to stderr even when the journal is there
 * (tests, --foreground); without it, back to what log_setup() found. */
void log_set_target_stderr(bool force);

/* True when lines currently go to the journal. */
bool log_target_is_journal(void);

/* Logs one message at `level`. request_id may be NULL; it is the
 * request_id of the request being served, so that log lines and audit
 * records can be joined. */
void log_full(int level, const char *request_id, const char *fmt, ...) _printf_(3, 4);

/* The same, with ": <strerror(error)>" appended. `error` may be given as
 * errno or as a negative errno-style return value; the function returns
 * -abs(error) (also when the message is filtered out) so that callers can
 * write `return log_error_errno(r, "...");`. Pass a nonzero error: 0 logs
 * no suffix and returns 0. */
int log_full_errno(int level, int error, const char *request_id, const char *fmt, ...) _printf_(4, 5);

#define log_debug(...)   log_full(LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, NULL, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, NULL, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, NULL, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, NULL, __VA_ARGS__)

#define log_debug_errno(e, ...)   log_full_errno(LOG_DEBUG, e, NULL, __VA_ARGS__)
#define log_info_errno(e, ...)    log_full_errno(LOG_INFO, e, NULL, __VA_ARGS__)
#define log_notice_errno(e, ...)  log_full_errno(LOG_NOTICE, e, NULL, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, NULL, __VA_ARGS__)
#define log_error_errno(e, ...)   log_full_errno(LOG_ERR, e, NULL, __VA_ARGS__)

#endif
