/* SPDX-License-Identifier: GPL-3.0-or-later */
/* backup.snapshots.list: a user's snapshots in a repository. Every
 * snapshot the module makes carries the tag user=<user>; restic filters
 * on it, so another account's snapshots are never read into the answer. */

#include <stdio.h>
#include <string.h>

#include "backup-internal.h"

static void copy_member(json_object *from, json_object *to, const char *k) {
        json_object *v;

        if (json_object_object_get_ex(from, k, &v))
                json_object_object_add(to, k, json_object_get(v));
}

static json_object *snapshot_of(json_object *s) {
        static const char *const keys[] = { "id", "short_id", "time", "hostname", "paths", "tags", "parent" };
        json_object *o = json_object_new_object();

        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
                copy_member(s, o, keys[i]);
        return o;
}

int backup_snapshots_list(jb_call *call) {
        jb_err err = JB_ERR_INIT;
        backup_cfg c;
        BACKUP_DEST_WIPED backup_dest d;
        char tag[64];
        const char *args[] = { "snapshots", "--json", "--tag", tag, NULL };
        json_object *dest = NULL, *list, *out;
        jb_spawn_result r;

        backup_cfg_from_settings(jb_call_settings(call), &c);
        json_object_object_get_ex(jb_call_params(call), "destination", &dest);
        if (backup_dest_from_params(&c, dest, &d, &err) < 0)
                return jb_call_fail_err(call, &err);
        snprintf(tag, sizeof tag, "user=%s", jb_param_str(call, "user", ""));
        if (backup_restic_run(&c, &d, args, jb_call_remaining_ms(call), &r, &err) < 0)
                return jb_call_fail_err(call, &err);
        if (!jb_spawn_succeeded(&r)) {
                backup_restic_err(&r, &err);
                jb_spawn_result_free(&r);
                return jb_call_fail_err(call, &err);
        }
        list = r.stdout_truncated ? NULL : json_tokener_parse(r.stdout_data);
        jb_spawn_result_free(&r);
        if (!list || !json_object_is_type(list, json_type_array)) {
                json_object_put(list);
                return jb_call_fail(call, JB_E_SERVICE_FAILED, "restic snapshots: not a JSON array");
        }
        out = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(list); i++)
                json_object_array_add(out, snapshot_of(json_object_array_get_idx(list, i)));
        json_object_put(list);
        json_object_object_add(jb_call_result(call), "snapshots", out);
        return 0;
}
