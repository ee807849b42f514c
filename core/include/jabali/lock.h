/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_LOCK_H
#define JABALI_LOCK_H

/* Per-resource locks across processes.
 *
 * Two workers converging the same resource (a domain's vhost, a user's
 * pool) must not interleave. A lock is named by a key — any short text such
 * as "domain:example.com" — and lives in a lock directory shared by all
 * workers (for the agent: /run/jabali-agent/locks, from its config):
 *
 *   int lk = jb_lock_acquire(lock_dir, "domain:example.com", 30000, err);
 *   if (lk < 0)
 *           return -1;              // BUSY after 30 s
 *   ... converge ...
 *   jb_lock_release(lk);
 *
 * A lock is an open file description holding an exclusive flock(2) lock
 * on a file in the lock directory (like an fcntl F_OFD_SETLKW lock, it
 * belongs to the open file description, not to the process). The kernel
 * drops it when the descriptor is closed, also when the process dies, so a
 * crashed worker never leaves a stale lock. The file's name is derived from
 * the key (the key's safe characters, escaped, plus a hash of the whole key;
 * never a '/' and never "." or ".."), so any key stays inside the
 * directory. Lock files are left in place (removing them would break the
 * exclusion); on a tmpfs such as /run they vanish at reboot.
 *
 * Locks are not re-entrant: acquiring a key this process already holds
 * waits for itself (and times out). The descriptor is O_CLOEXEC, but a
 * child made with fork() shares it: the lock is released only when every
 * copy is closed.
 *
 * A timed wait (timeout_ms > 0) arms a CLOCK_MONOTONIC timer that sends
 * JB_LOCK_SIGNAL to the calling thread when the timeout passes (and every
 * 10 ms after that until the wait has ended) to interrupt the wait; during
 * the wait that signal is unblocked in this thread and handled by a no-op
 * handler installed without SA_RESTART. The previous handler and signal
 * mask are restored before returning. A process using JB_LOCK_SIGNAL for
 * something else must not run timed acquisitions concurrently with it;
 * timed acquisitions from several threads at once are fine. */

#include <signal.h>

#include <jabali/error.h>
#include <jabali/visibility.h>

/* The signal that ends a timed wait. An expression: glibc computes
 * SIGRTMAX at run time. */
#define JB_LOCK_SIGNAL (SIGRTMAX - 2)

/* The longest key accepted, in bytes. */
#define JB_LOCK_KEY_MAX 1024

/* Takes the exclusive lock named `key` (1..JB_LOCK_KEY_MAX bytes of any
 * text) in the existing directory `lock_dir` (an absolute path, trusted,
 * from configuration).
 *
 * timeout_ms: < 0 waits as long as it takes, 0 does not wait, > 0 waits at
 * most that many milliseconds.
 *
 * Returns the lock's descriptor (>= 0; release it with jb_lock_release) or
 * -1: BUSY when another holder kept the lock past the timeout,
 * INVALID_PARAMS for a bad key or lock_dir, NOT_FOUND when lock_dir does
 * not exist, CONFLICT when the lock file is not a regular file (or a
 * symlink), INTERNAL otherwise. */
JB_EXPORT int jb_lock_acquire(const char *lock_dir, const char *key, int timeout_ms, jb_err *err);

/* Releases a lock by closing its descriptor. Accepts -1 (does nothing).
 * Always returns -1, so `lk = jb_lock_release(lk);` leaves no stale fd. */
JB_EXPORT int jb_lock_release(int lock_fd);

#endif
