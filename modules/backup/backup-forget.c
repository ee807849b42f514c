/* SPDX-License-Identifier: GPL-3.0-or-later */
/* backup.forget: drops the snapshots a keep policy no longer keeps, then
 * prunes the data only they used.
 *
 * `restic forget --json` and `restic prune` run separately: restic 0.14's
 * `forget --prune --json` prints prune's plain text after the JSON on the
 * same stdout. Prune runs only when forget removed something, so a repeat
 * changes nothing and says so.
 *
 * By default both run within the action's deadline (five minutes), which
 * a small repository's prune meets easily. A large one's prune rewrites
 * packs for much longer: with `background` the same work is a job (stages
 * "forget" and "prune") that backup.job.cancel stops with SIGINT, on which
 * restic removes its lock. An interrupted prune leaves a usable repository
 * (restic deletes packs only after writing the new index).
 *
 * The policy is required: without a keep_* restic would remove nothing,
 * and a caller that forgot the policy must hear it rather than get a
 * success. The snapshots considered can be narrowed to an account's
 * (tag user=<user>) and to further key=value tags, all of which a
 * snapshot must carry. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup-internal.h"

static const char *const keeps[] = { "keep_last", "keep_daily", "keep_weekly", "keep_monthly" };
#define KEEPS (sizeof keeps / sizeof keeps[0])

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* The tag filter: user=<user> and every tags member as k=v, sorted, joined
 * with ',' (restic: a snapshot must carry every tag of one --tag). The
 * schema made keys and values tokens, so no ',' or '=' is inside one.
 * *ret is NULL when there is no filter. */
static int tag_filter(json_object *params, char **ret, jb_err *err) {
        json_object *tags = NULL, *u = NULL;
        size_t n = 0, i = 0, len = 1;
        char **parts, *out;

        *ret = NULL;
        if (json_object_object_get_ex(params, "tags", &tags))
                n = (size_t) json_object_object_length(tags);
        if (json_object_object_get_ex(params, "user", &u))
                n++;
        if (n == 0)
                return 0;
        parts = calloc(n, sizeof *parts);
        if (!parts)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        if (u && asprintf(&parts[i++], "user=%s", json_object_get_string(u)) < 0)
                parts[--i] = NULL;
        if (tags) {
                json_object_object_foreach(tags, k, v) {
                        if (i < n && asprintf(&parts[i++], "%s=%s", k, json_object_get_string(v)) < 0)
                                parts[--i] = NULL;
                }
        }
        qsort(parts, i, sizeof *parts, cmp_str);
        for (size_t k = 0; k < i; k++)
                len += strlen(parts[k]) + 1;
        out = i == n ? calloc(1, len) : NULL;
        for (size_t k = 0; out && k < i; k++) {
                if (k > 0)
                        strcat(out, ",");
                strcat(out, parts[k]);
        }
        for (size_t k = 0; k < i; k++)
                free(parts[k]);
        free(parts);
        if (!out)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        *ret = out;
        return 0;
}

static void copy_member(json_object *from, json_object *to, const char *k) {
        json_object *v;

        if (json_object_object_get_ex(from, k, &v))
                json_object_object_add(to, k, json_object_get(v));
}

static json_object *snapshot_of(json_object *s) {
        static const char *const keys[] = { "id", "short_id", "time", "hostname", "paths", "tags" };
        json_object *o = json_object_new_object();

        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
                copy_member(s, o, keys[i]);
        return o;
}

/* Appends the snapshots of every group's `member` ("keep", "remove"). */
static json_object *collect(json_object *groups, const char *member) {
        json_object *out = json_object_new_array();

        for (size_t g = 0; g < json_object_array_length(groups); g++) {
                json_object *list;

                if (!json_object_object_get_ex(json_object_array_get_idx(groups, g), member, &list) ||
                    !json_object_is_type(list, json_type_array))
                        continue;
                for (size_t i = 0; i < json_object_array_length(list); i++)
                        json_object_array_add(out, snapshot_of(json_object_array_get_idx(list, i)));
        }
        return out;
}

/* What forget needs, taken from the request before any restic runs; a
 * job's runner works on its own copy. */
typedef struct fplan {
        backup_dest d;
        int64_t keep[KEEPS];
        char *filter;           /* the tag filter or NULL; the handler's (it frees it) */
        bool dry_run, prune;
        char id[BACKUP_JOB_ID_LEN + 1];
} fplan;

static void fplan_wipe(fplan *p) {
        backup_dest_wipe(&p->d);
        free(p->filter);
        p->filter = NULL;
}

/* restic forget --json [--dry-run] --keep-* N... [--tag filter]: its
 * answer, an array of groups. */
static int run_forget(const backup_exec *x, const fplan *p, json_object **ret, jb_err *err) {
        char nums[KEEPS][24], flags[KEEPS][24];
        const char *args[4 + 2 * KEEPS + 3];
        size_t n = 0;
        jb_spawn_result r;

        args[n++] = "forget";
        args[n++] = "--json";
        if (p->dry_run)
                args[n++] = "--dry-run";
        for (size_t i = 0; i < KEEPS; i++) {
                if (p->keep[i] <= 0)
                        continue;
                /* keep_last → --keep-last */
                snprintf(flags[i], sizeof flags[i], "--%s", keeps[i]);
                flags[i][6] = '-';
                snprintf(nums[i], sizeof nums[i], "%lld", (long long) p->keep[i]);
                args[n++] = flags[i];
                args[n++] = nums[i];
        }
        if (p->filter) {
                args[n++] = "--tag";
                args[n++] = p->filter;
        }
        args[n] = NULL;
        if (backup_restic_exec(x, args, &r, err) < 0)
                return -1;
        if (!jb_spawn_succeeded(&r)) {
                backup_restic_err(&r, err);
                jb_spawn_result_free(&r);
                return -1;
        }
        *ret = r.stdout_truncated ? NULL : json_tokener_parse(r.stdout_data);
        jb_spawn_result_free(&r);
        if (!*ret || !json_object_is_type(*ret, json_type_array)) {
                json_object_put(*ret);
                *ret = NULL;
                return jb_err_set(err, JB_E_SERVICE_FAILED, "restic forget: not a JSON array");
        }
        return 0;
}

static int run_prune(const backup_exec *x, size_t removed, jb_err *err) {
        static const char *const args[] = { "prune", NULL };
        jb_spawn_result r;
        int ret = 0;

        if (backup_restic_exec(x, args, &r, err) < 0)
                return -1;
        if (!jb_spawn_succeeded(&r))
                ret = backup_restic_err(&r, err);
        jb_spawn_result_free(&r);
        if (ret < 0)
                jb_err_prefix(err, removed == 1 ? "1 snapshot was forgotten, but prune failed: "
                                                : "snapshots were forgotten, but prune failed: ");
        return ret;
}

/* Adds kept[] and removed[] of restic's groups to `out` (taking groups);
 * returns how many were removed. */
static size_t add_lists(json_object *out, json_object *groups) {
        json_object *removed = collect(groups, "remove");
        size_t n = json_object_array_length(removed);

        json_object_object_add(out, "kept", collect(groups, "keep"));
        json_object_object_add(out, "removed", removed);
        json_object_put(groups);
        return n;
}

/* The job: a "forget" stage (kept[], removed[]), then a "prune" stage
 * when something was removed and prune was asked for. */
static void forget_work(backup_job *j, void *arg) {
        const fplan *p = arg;
        backup_exec x = { .c = j->c, .d = &p->d, .job = j };
        json_object *stage = backup_job_stage_begin(j, "forget"), *groups = NULL;
        jb_err err = JB_ERR_INIT;
        size_t n;

        if (run_forget(&x, p, &groups, &err) < 0) {
                backup_job_stage_fail(j, stage, &err);
                return;
        }
        n = add_lists(stage, groups);
        backup_job_stage_end(j, stage, "succeeded", NULL);
        if (n == 0 || !p->prune || backup_job_cancelled(j))
                return;
        stage = backup_job_stage_begin(j, "prune");
        if (run_prune(&x, n, &err) < 0)
                backup_job_stage_fail(j, stage, &err);
        else
                backup_job_stage_end(j, stage, "succeeded", NULL);
}

static int launch(jb_call *call, const backup_cfg *c, fplan *p) {
        static const char *const copied[] = { "user", "tags", "keep_last", "keep_daily", "keep_weekly",
                                              "keep_monthly", "prune" };
        json_object *rec = json_object_new_object(), *params = jb_call_params(call);

        json_object_object_add(rec, "kind", json_object_new_string("forget"));
        copy_member(params, rec, "destination");
        for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++)
                copy_member(params, rec, copied[i]);
        jb_call_set_changed(call, true);
        return backup_job_launch(call, c, rec, p->id, forget_work, p);
}

int backup_forget(jb_call *call) {
        jb_err err = JB_ERR_INIT;
        backup_cfg c;
        fplan p __attribute__((cleanup(fplan_wipe))) = { .filter = NULL };
        backup_exec x = { .c = &c, .d = &p.d, .call = call };
        json_object *dest = NULL, *groups = NULL, *res = jb_call_result(call);
        bool any = false;
        size_t n;

        for (size_t i = 0; i < KEEPS; i++)
                any |= (p.keep[i] = jb_param_int(call, keeps[i], 0)) > 0;
        if (!any)
                return jb_call_fail(call, JB_E_INVALID_PARAMS,
                                    "keep_last, keep_daily, keep_weekly or keep_monthly is required");
        p.dry_run = jb_call_dry_run(call);
        p.prune = jb_param_bool(call, "prune", true);
        if (p.dry_run && jb_param_bool(call, "background", false))
                return jb_call_fail(call, JB_E_INVALID_PARAMS,
                                    "background: a dry run answers at once (leave background out)");
        backup_cfg_from_settings(jb_call_settings(call), &c);
        json_object_object_get_ex(jb_call_params(call), "destination", &dest);
        if (backup_dest_from_params(&c, dest, &p.d, &err) < 0 || tag_filter(jb_call_params(call), &p.filter, &err) < 0)
                return jb_call_fail_err(call, &err);
        if (jb_param_bool(call, "background", false))
                return launch(call, &c, &p);
        if (run_forget(&x, &p, &groups, &err) < 0)
                return jb_call_fail_err(call, &err);
        n = add_lists(res, groups);
        jb_call_set_changed(call, n > 0);
        if (n == 0 || p.dry_run || !p.prune) {
                json_object_object_add(res, "pruned", json_object_new_boolean(false));
                return 0;
        }
        if (run_prune(&x, n, &err) < 0)
                return jb_call_fail_err(call, &err);
        json_object_object_add(res, "pruned", json_object_new_boolean(true));
        return 0;
}
