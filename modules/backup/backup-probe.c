/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The write probe of backup.destination.test: opening a repository proves
 * it can be read, not that a backup can land in it. A few random bytes are
 * backed up from stdin as a snapshot of its own (tag jabali-probe, so no
 * account's listing shows it), read back with `restic dump` and compared,
 * and the snapshot is forgotten so that tests do not pile up snapshots
 * (its few hundred bytes of data go with the next prune). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "backup-internal.h"

#define PROBE_NAME "jabali-probe"
#define PROBE_BYTES 32
#define SNAPSHOT_ID_MAX 64

static bool is_hex_id(const char *s) {
        size_t n = strlen(s);

        if (n < 8 || n > SNAPSHOT_ID_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

/* The snapshot id of `backup --json`'s summary line. */
static bool summary_id(const char *out, char id[SNAPSHOT_ID_MAX + 1]) {
        bool found = false;

        for (const char *line = out; line && *line && !found;) {
                const char *end = strchr(line, '\n');
                char *copy = strndup(line, end ? (size_t) (end - line) : strlen(line));
                json_object *o = copy ? json_tokener_parse(copy) : NULL, *t, *v;

                free(copy);
                if (o && json_object_object_get_ex(o, "message_type", &t) &&
                    strcmp(json_object_get_string(t), "summary") == 0 &&
                    json_object_object_get_ex(o, "snapshot_id", &v) && is_hex_id(json_object_get_string(v))) {
                        snprintf(id, SNAPSHOT_ID_MAX + 1, "%s", json_object_get_string(v));
                        found = true;
                }
                json_object_put(o);
                line = end ? end + 1 : NULL;
        }
        return found;
}

/* A failed write: the code restic's words map to; a refusal that is
 * not a lock (a full or immutable data directory) is DEST_READ_ONLY too. */
static int write_err(const jb_spawn_result *r, jb_err *err) {
        char msg[JB_ERR_MSG_MAX];

        backup_restic_err(r, err);
        if (strcmp(err->code, jb_code_name(JB_E_SERVICE_FAILED)) != 0)
                return -1;
        if (strstr(r->stderr_data, "permission denied") || strstr(r->stderr_data, "operation not permitted"))
                return jb_err_set_code(err, BACKUP_E_READ_ONLY, "the destination refused the write probe");
        snprintf(msg, sizeof msg, "%s", err->msg);
        return jb_err_set(err, JB_E_SERVICE_FAILED, "write probe: %s", msg);
}

static int probe_write(const backup_cfg *c, const backup_dest *d, const char *data, uint64_t timeout_ms,
                       char id[SNAPSHOT_ID_MAX + 1], jb_err *err) {
        static const char *const args[] = { "backup", "--json", "--stdin", "--stdin-filename", PROBE_NAME,
                                            "--tag", PROBE_NAME, NULL };
        jb_spawn_result r;
        int ret = 0;

        if (backup_restic_run_input(c, d, args, data, strlen(data), timeout_ms, &r, err) < 0)
                return -1;
        if (!jb_spawn_succeeded(&r))
                ret = write_err(&r, err);
        else if (!summary_id(r.stdout_data, id))
                ret = jb_err_set(err, JB_E_SERVICE_FAILED, "write probe: restic named no snapshot");
        jb_spawn_result_free(&r);
        return ret;
}

static int probe_read(const backup_cfg *c, const backup_dest *d, const char *data, uint64_t timeout_ms,
                      const char *id, jb_err *err) {
        const char *args[] = { "dump", id, "/" PROBE_NAME, NULL };
        jb_spawn_result r;
        int ret = 0;

        if (backup_restic_run(c, d, args, timeout_ms, &r, err) < 0)
                return -1;
        if (!jb_spawn_succeeded(&r))
                ret = backup_restic_err(&r, err);
        else if (r.stdout_len != strlen(data) || memcmp(r.stdout_data, data, r.stdout_len) != 0)
                ret = jb_err_set(err, JB_E_SERVICE_FAILED,
                                 "read back: the destination returned other bytes than were written");
        jb_spawn_result_free(&r);
        return ret;
}

static int probe_forget(const backup_cfg *c, const backup_dest *d, uint64_t timeout_ms, const char *id,
                        jb_err *err) {
        const char *args[] = { "forget", id, NULL };
        jb_spawn_result r;
        int ret = 0;

        if (backup_restic_run(c, d, args, timeout_ms, &r, err) < 0)
                return -1;
        if (!jb_spawn_succeeded(&r))
                ret = backup_restic_err(&r, err);
        jb_spawn_result_free(&r);
        return ret;
}

int backup_probe(jb_call *call, const backup_cfg *c, const backup_dest *d, jb_err *err) {
        unsigned char b[PROBE_BYTES];
        char data[2 * PROBE_BYTES + 2], id[SNAPSHOT_ID_MAX + 1];
        jb_err forget_err = JB_ERR_INIT;
        int r;

        if (getrandom(b, sizeof b, 0) != (ssize_t) sizeof b)
                return jb_err_set(err, JB_E_INTERNAL, "getrandom: %s", strerror(errno));
        for (size_t i = 0; i < sizeof b; i++)
                snprintf(data + 2 * i, 3, "%02x", b[i]);
        strcat(data, "\n");
        if (probe_write(c, d, data, jb_call_remaining_ms(call), id, err) < 0)
                return -1;
        r = probe_read(c, d, data, jb_call_remaining_ms(call), id, err);
        /* Forgotten whether or not it read back: a probe is never kept. */
        if (probe_forget(c, d, jb_call_remaining_ms(call), id, &forget_err) < 0 && r == 0) {
                *err = forget_err;
                return -1;
        }
        return r;
}
