/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_AUDIT_H
#define JABALI_AUDIT_H

/* The audit trail (design.md §6): one record per request when it ends, and
 * one per refusal. Two sinks:
 *
 *  - an append-only JSON Lines file, written before the response is sent;
 *    a failure of this sink is reported to the caller (the daemon then
 *    logs it and starts no mutating action until a record is written
 *    again: it never begins host changes it cannot audit);
 *  - the journal, with structured JABALI_* fields (best effort: it is only
 *    used when journald's socket exists at audit_open() time).
 *
 * File format: one JSON object per line, members in this order, a member
 * left out when its value is NULL/absent:
 *
 *   time         RFC 3339 UTC with microseconds, "2026-11-23T08:01:02.123456Z"
 *   event        "request", "connection_refused", "frame_rejected", ...
 *   request_id   action   module
 *   peer         {"pid":..,"uid":..,"gid":..} (always present)
 *   actor        target   params   result   error
 *   changed      dry_run  duration_us
 *                (always present for "request" events; for other events
 *                the booleans only when true and duration_us only when
 *                nonzero)
 *   hat          confinement
 *
 * Lines are serialised by json-c, so quotes and control characters inside
 * strings are escaped; bytes that are not valid UTF-8 (also overlong forms
 * and encoded surrogates) are replaced by U+FFFD, so every line is valid
 * I-JSON whatever the strings hold. Each line is appended with one
 * write(2) on an O_APPEND descriptor, so concurrent writers (the master and
 * e.g. a forked helper holding the same file) never interleave.
 *
 * Not thread-safe; one `audit` per process. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json_object.h>

#include <jabali/error.h>

typedef struct audit audit;     /* opaque; owns the file descriptor */

typedef struct audit_record {
        const char *event;              /* required: "request", "connection_refused", "frame_rejected" */
        const char *request_id;         /* may be NULL */
        const char *action, *module;    /* may be NULL */
        pid_t pid;                      /* peer credentials (SO_PEERCRED) */
        uid_t uid;
        gid_t gid;
        json_object *actor;             /* borrowed, may be NULL */
        json_object *params;            /* borrowed, ALREADY REDACTED by the caller, may be NULL */
        const char *target;             /* e.g. the domain or user acted on, may be NULL */
        const char *result;             /* "ok" or an error code; may be NULL for non-request events */
        const char *error;              /* human message for errors, may be NULL */
        bool changed, dry_run;
        uint64_t duration_usec;
        const char *hat;                /* hat the worker ran in, NULL for the master */
        const char *confinement;        /* e.g. "apparmor+nnp", "nnp", "none"; may be NULL */
} audit_record;

/* Opens the sinks. `path` NULL or "" means no file sink. The file is opened
 * O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC|O_NOFOLLOW with mode 0600 (an existing
 * file keeps its mode); a symlink at the path, anything but a regular file
 * and a missing parent directory are refused with INTERNAL and a message
 * naming the path. `fsync_always` makes every record durable (fdatasync)
 * before audit_write() returns. `journal` asks for the journal sink, which
 * is used only when journald's socket is present now.
 *
 * If the file's last line was torn (a crash or a full disk in the middle of
 * a write), a '\n' is appended so that the next record starts a line of its
 * own. Returns 0, or 1 when such a repair was made (the daemon logs it), or
 * -1 with err. On success *ret is owned by the caller (audit_close()). */
int audit_open(audit **ret, const char *path, bool fsync_always, bool journal, jb_err *err);

/* Appends one record to every sink. Returns 0, or -1 with err (INTERNAL)
 * when the file sink could not take the whole record (or, without a file
 * sink, when the journal refused it). A failed journal send is not an error
 * while the file sink works. With no sink at all it returns 0. r->event
 * must be set. */
int audit_write(audit *a, const audit_record *r, jb_err *err);

/* Reopens the file at the same path (SIGUSR1 after logrotate moved it).
 * On failure the old descriptor is kept, so records still go somewhere,
 * and -1 is returned with err. Returns 0, or 1 when a torn last line was
 * repaired as in audit_open(). A no-op returning 0 without a file sink. */
int audit_reopen(audit *a, jb_err *err);

/* Group commit for fsync "always": with deferred sync on, audit_write()
 * writes but does not fdatasync(); the caller calls audit_sync() once for
 * every record written since, before it lets any of their answers out
 * (the master does so once per event-loop iteration). */
void audit_set_deferred_sync(audit *a, bool on);
bool audit_sync_pending(const audit *a);
int audit_sync(audit *a, jb_err *err);

/* Closes the sinks and frees `a`. NULL-safe. */
void audit_close(audit *a);

/* The file sink's descriptor, or -1 without one. It is O_CLOEXEC; a
 * forked process that must not write records closes it. */
int audit_fd(const audit *a);

/* True when records are also sent to the journal. */
bool audit_has_journal(const audit *a);

#endif
