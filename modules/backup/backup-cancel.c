/* SPDX-License-Identifier: GPL-3.0-or-later */
/* backup.job.cancel: a SIGTERM to the job's runner, which stops restic
 * (SIGTERM: it drops its lock and writes no snapshot) and begins no
 * further stage; the runner then records the job cancelled.
 *
 * The runner is named by pid and start time; the signal goes through a
 * pidfd opened before the start time is compared, so a pid reused since
 * is never signalled (where there is no pidfd_open, kill() right after
 * the comparison). The handler then waits (within its deadline) for the
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
/* Without a pidfd, how often the record is read while waiting. */
#define NO_PIDFD_POLL_MS 50

/* The runner the record names, as a pidfd opened before its start time
 * is compared, so a pid reused since is never signalled: >= 0. -1 with
 * *pid 0: the runner is gone. -1 with *pid set: there is no pidfd_open
 * (a kernel before 5.3; valgrind 3.19), and the start time matched just
 * now. */
static int runner_pidfd(json_object *rec, pid_t *pid) {
        json_object *vpid, *start;
        pid_t p;
        int fd;

        *pid = 0;
        if (!json_object_object_get_ex(rec, "pid", &vpid) || !json_object_object_get_ex(rec, "pid_start", &start))
                return -1;
        p = (pid_t) json_object_get_int64(vpid);
        fd = pidfd_open(p, 0);
        if (fd < 0 && errno != ENOSYS)
                return -1;
        if (backup_pid_start(p) != json_object_get_int64(start)) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        if (fd < 0)
                *pid = p;
        return fd;
}

/* How long the answer waits for the runner: CANCEL_WAIT_MS, within the
 * deadline. */
static int wait_ms(jb_call *call) {
        uint64_t left = jb_call_remaining_ms(call);

        left = left > 2000 ? left - 2000 : 0;
        return (int) (left < CANCEL_WAIT_MS ? left : CANCEL_WAIT_MS);
}

/* SIGTERM to the runner, then a wait for it to end: on its pidfd, or
 * without one by reading the record until it is final (kill() follows
 * the start time check by two system calls: that is the window in which a
 * reused pid could be hit). */
static int stop_runner(jb_call *call, const backup_cfg *c, const char *id, int fd, pid_t pid) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int limit = wait_ms(call);
        json_object *rec;

        if (fd >= 0) {
                if (pidfd_send_signal(fd, SIGTERM, NULL, 0) < 0 && errno != ESRCH)
                        return jb_call_fail(call, JB_E_INTERNAL, "signalling the job's process: %s", strerror(errno));
                (void) poll(&p, 1, limit);
                return 0;
        }
        if (kill(pid, SIGTERM) < 0 && errno != ESRCH)
                return jb_call_fail(call, JB_E_INTERNAL, "signalling the job's process: %s", strerror(errno));
        for (int waited = 0; waited < limit; waited += NO_PIDFD_POLL_MS) {
                bool done;

                if (backup_job_read(c, id, &rec, NULL) < 0)
                        return 0;
                done = !backup_job_unfinished(rec);
                json_object_put(rec);
                if (done)
                        return 0;
                (void) poll(NULL, 0, NO_PIDFD_POLL_MS);
        }
        return 0;
}

int backup_job_cancel(jb_call *call) {
        jb_err err = JB_ERR_INIT;
        backup_cfg c;
        const char *id = jb_param_str(call, "job_id", "");
        json_object *rec, *res = jb_call_result(call);
        pid_t pid;
        int fd, r;

        backup_cfg_from_settings(jb_call_settings(call), &c);
        if (backup_job_read(&c, id, &rec, &err) < 0)
                return jb_call_fail_err(call, &err);
        if (!backup_job_unfinished(rec)) {
                json_object_object_add(res, "state", json_object_new_string(backup_job_state(rec)));
                json_object_put(rec);
                return 0;
        }
        fd = runner_pidfd(rec, &pid);
        json_object_put(rec);
        jb_call_set_changed(call, true);
        if (jb_call_dry_run(call)) {
                if (fd >= 0)
                        close(fd);
                json_object_object_add(res, "state", json_object_new_string("running"));
                return 0;
        }
        if (fd >= 0 || pid > 0) {
                r = stop_runner(call, &c, id, fd, pid);
                if (fd >= 0)
                        close(fd);
                if (r < 0)
                        return r;
        }
        if (backup_job_read(&c, id, &rec, &err) < 0)
                return jb_call_fail_err(call, &err);
        json_object_object_add(res, "state", json_object_new_string(backup_job_state(rec)));
        json_object_put(rec);
        return 0;
}
