/* SPDX-License-Identifier: GPL-3.0-or-later */
/* backup.job.cancel: a SIGTERM to the job's runner, which stops restic
 * (SIGTERM: it drops its lock and writes no snapshot) and begins no
 * further stage; the runner then records the job cancelled.
 *
 * The runner is named by pid and start time; the signal goes through a
 * pidfd opened before the start time is compared, so a pid reused since
 * is never signalled. The handler then waits (within its deadline) for the
 * runner to end, so the answer usually carries the final state. */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "backup-internal.h"

/* Longest wait for the runner to end; restic stops within a second. */
#define CANCEL_WAIT_MS 20000

static const char *state_of(json_object *rec) {
        json_object *v;

        return json_object_object_get_ex(rec, "state", &v) ? json_object_get_string(v) : "";
}

static bool finished(json_object *rec) {
        const char *s = state_of(rec);

        return strcmp(s, "queued") != 0 && strcmp(s, "running") != 0;
}

/* A pidfd of the runner the record names, or -1 when it is gone. */
static int runner_pidfd(json_object *rec) {
        json_object *pid, *start;
        int fd;

        if (!json_object_object_get_ex(rec, "pid", &pid) || !json_object_object_get_ex(rec, "pid_start", &start))
                return -1;
        fd = pidfd_open((pid_t) json_object_get_int64(pid), 0);
        if (fd < 0)
                return -1;
        if (backup_pid_start((pid_t) json_object_get_int64(pid)) != json_object_get_int64(start)) {
                close(fd);
                return -1;
        }
        return fd;
}

int backup_job_cancel(jb_call *call) {
        jb_err err = JB_ERR_INIT;
        backup_cfg c;
        const char *id = jb_param_str(call, "job_id", "");
        json_object *rec, *res = jb_call_result(call);
        uint64_t left;
        struct pollfd p;
        int fd;

        backup_cfg_from_settings(jb_call_settings(call), &c);
        if (backup_job_read(&c, id, &rec, &err) < 0)
                return jb_call_fail_err(call, &err);
        if (finished(rec)) {
                json_object_object_add(res, "state", json_object_new_string(state_of(rec)));
                json_object_put(rec);
                return 0;
        }
        fd = runner_pidfd(rec);
        json_object_put(rec);
        jb_call_set_changed(call, true);
        if (jb_call_dry_run(call)) {
                if (fd >= 0)
                        close(fd);
                json_object_object_add(res, "state", json_object_new_string("running"));
                return 0;
        }
        if (fd >= 0) {
                if (pidfd_send_signal(fd, SIGTERM, NULL, 0) < 0 && errno != ESRCH) {
                        close(fd);
                        return jb_call_fail(call, JB_E_INTERNAL, "signalling the job's process: %s",
                                            strerror(errno));
                }
                left = jb_call_remaining_ms(call);
                left = left > 2000 ? left - 2000 : 0;
                p = (struct pollfd) { .fd = fd, .events = POLLIN };
                (void) poll(&p, 1, (int) (left < CANCEL_WAIT_MS ? left : CANCEL_WAIT_MS));
                close(fd);
        }
        if (backup_job_read(&c, id, &rec, &err) < 0)
                return jb_call_fail_err(call, &err);
        json_object_object_add(res, "state", json_object_new_string(state_of(rec)));
        json_object_put(rec);
        return 0;
}
