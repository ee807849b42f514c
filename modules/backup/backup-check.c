/* SPDX-License-Identifier: GPL-3.0-or-later */
/* backup.check: `restic check`, optionally reading back part of the data
 * (--read-data-subset). A repository restic finds damaged is its own code,
 * REPO_DAMAGED, not SERVICE_FAILED: the caller must tell "the check could
 * not run" (locked, wrong password, no repository) from "the backups are
 * not restorable".
 *
 * restic 0.14 writes its progress to stdout and each finding to stderr,
 * ending with "Fatal: repository contains errors" (exit status 1); an
 * index it cannot load ends with "Fatal: LoadIndex returned errors". The
 * findings are stderr's lines. By default within the action's deadline
 * (five minutes); reading much data back takes longer, and `background`
 * makes the check a job (one stage, "check", with the findings) that
 * backup.job.cancel stops. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup-internal.h"

#define FINDINGS_MAX 100
#define SUBSET_DEN_MAX 100000

/* Digits only, no sign or leading zero, at most 6 of them. */
static bool parse_uint(const char *s, size_t len, unsigned long *v) {
        if (len == 0 || len > 6 || s[0] == '0')
                return false;
        *v = 0;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                *v = *v * 10 + (unsigned long) (s[i] - '0');
        }
        return true;
}

/* "n/t" (1 <= n <= t <= 100000) or "N%" (1..100): what restic accepts,
 * narrowed to integers so the value is checked here, not by restic. */
static bool subset_ok(const char *s) {
        const char *slash = strchr(s, '/');
        size_t len = strlen(s);
        unsigned long n, t;

        if (slash)
                return parse_uint(s, (size_t) (slash - s), &n) && parse_uint(slash + 1, strlen(slash + 1), &t) &&
                       n <= t && t <= SUBSET_DEN_MAX;
        return len >= 2 && s[len - 1] == '%' && parse_uint(s, len - 1, &n) && n <= 100;
}

/* stderr's non-empty lines, without restic's closing "Fatal:" line. */
static json_object *findings_of(const char *text) {
        json_object *out = json_object_new_array();
        const char *line = text;

        while (line && *line && json_object_array_length(out) < FINDINGS_MAX) {
                const char *end = strchr(line, '\n');
                size_t n = end ? (size_t) (end - line) : strlen(line);

                if (n > 0 && strncmp(line, "Fatal: ", 7) != 0)
                        json_object_array_add(out, json_object_new_string_len(line, (int) n));
                line = end ? end + 1 : NULL;
        }
        return out;
}

static bool damaged(const jb_spawn_result *r) {
        const char *e = r->stderr_data ? r->stderr_data : "";

        return !r->timed_out && r->exit_code == 1 &&
               (strstr(e, "Fatal: repository contains errors") || strstr(e, "Fatal: LoadIndex returned errors"));
}

/* REPO_DAMAGED with the first findings in the message. */
static int damaged_err(json_object *findings, jb_err *err) {
        char msg[JB_ERR_MSG_MAX] = "";
        size_t used = 0;

        for (size_t i = 0; i < json_object_array_length(findings) && used < sizeof msg - 1; i++) {
                int k = snprintf(msg + used, sizeof msg - used, "%s%s", i ? "; " : "",
                                 json_object_get_string(json_object_array_get_idx(findings, i)));

                if (k < 0)
                        break;
                used += (size_t) k;
        }
        return jb_err_set_code(err, BACKUP_E_DAMAGED, "restic check found errors: %.400s", msg);
}

typedef struct cplan {
        backup_dest d;
        const char *subset;     /* borrowed from the request; valid in the runner's copy */
        char id[BACKUP_JOB_ID_LEN + 1];
} cplan;

static void cplan_wipe(cplan *p) {
        backup_dest_wipe(&p->d);
}

/* restic check where x says; findings (always set on 0 and on a damaged
 * repository, the caller's) and the error. */
static int run_check(const backup_exec *x, const char *subset, json_object **findings, jb_err *err) {
        const char *args[] = { "check", subset ? "--read-data-subset" : NULL, subset, NULL };
        jb_spawn_result r;

        *findings = NULL;
        if (backup_restic_exec(x, args, &r, err) < 0)
                return -1;
        *findings = findings_of(r.stderr_data);
        if (!jb_spawn_succeeded(&r)) {
                if (damaged(&r))
                        damaged_err(*findings, err);
                else {
                        backup_restic_err(&r, err);
                        json_object_put(*findings);
                        *findings = NULL;
                }
                jb_spawn_result_free(&r);
                return -1;
        }
        jb_spawn_result_free(&r);
        return 0;
}

/* The job: one "check" stage holding the findings. */
static void check_work(backup_job *j, void *arg) {
        const cplan *p = arg;
        backup_exec x = { .c = j->c, .d = &p->d, .job = j };
        json_object *stage = backup_job_stage_begin(j, "check"), *findings;
        jb_err err = JB_ERR_INIT;
        int r = run_check(&x, p->subset, &findings, &err);

        if (findings)
                json_object_object_add(stage, "findings", findings);
        if (r == 0)
                backup_job_stage_end(j, stage, "succeeded", NULL);
        else
                backup_job_stage_fail(j, stage, &err);
}

int backup_check(jb_call *call) {
        jb_err err = JB_ERR_INIT;
        backup_cfg c;
        cplan p __attribute__((cleanup(cplan_wipe))) = { .subset = jb_param_str(call, "read_data_subset", NULL) };
        backup_exec x = { .c = &c, .d = &p.d, .call = call };
        json_object *dest = NULL, *findings, *rec, *res = jb_call_result(call);

        if (p.subset && !subset_ok(p.subset))
                return jb_call_fail(call, JB_E_INVALID_PARAMS,
                                    "read_data_subset: '%s' is neither n/t (1 <= n <= t <= %d) nor a percentage "
                                    "1%%..100%%", p.subset, SUBSET_DEN_MAX);
        backup_cfg_from_settings(jb_call_settings(call), &c);
        json_object_object_get_ex(jb_call_params(call), "destination", &dest);
        if (backup_dest_from_params(&c, dest, &p.d, &err) < 0)
                return jb_call_fail_err(call, &err);
        if (jb_param_bool(call, "background", false)) {
                if (jb_call_dry_run(call))
                        return jb_call_fail(call, JB_E_INVALID_PARAMS,
                                            "background: a dry run starts no job (leave background out)");
                rec = json_object_new_object();
                json_object_object_add(rec, "kind", json_object_new_string("check"));
                json_object_object_add(rec, "destination", json_object_get(dest));
                if (p.subset)
                        json_object_object_add(rec, "read_data_subset", json_object_new_string(p.subset));
                return backup_job_launch(call, &c, rec, p.id, check_work, &p);
        }
        if (run_check(&x, p.subset, &findings, &err) < 0) {
                json_object_put(findings);
                return jb_call_fail_err(call, &err);
        }
        json_object_object_add(res, "ok", json_object_new_boolean(true));
        if (p.subset)
                json_object_object_add(res, "read_data_subset", json_object_new_string(p.subset));
        json_object_object_add(res, "findings", findings);
        return 0;
}
