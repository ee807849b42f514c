/* SPDX-License-Identifier: GPL-3.0-or-later */
/* jabali-agentctl job watch: a job record as a line (see progress.h). */

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "progress.h"

static const char *str(json_object *o, const char *k, const char *def) {
        json_object *v;

        return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : def;
}

static double num(json_object *o, const char *k) {
        json_object *v;

        if (!json_object_object_get_ex(o, k, &v))
                return 0;
        if (json_object_is_type(v, json_type_double))
                return json_object_get_double(v);
        if (json_object_is_type(v, json_type_int))
                return (double) json_object_get_int64(v);
        return 0;
}

/* Appends to buf at *o, never past size - 1; printable ASCII and UTF-8
 * bytes only (a record's text could carry escape sequences). */
static void put(char *buf, size_t size, size_t *o, const char *fmt, ...) {
        char tmp[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        for (const unsigned char *p = (const unsigned char *) tmp; *p && *o + 1 < size; p++)
                buf[(*o)++] = (*p < 0x20 || *p == 0x7f) ? '?' : (char) *p;
        buf[*o] = '\0';
}

static void human(double b, char *out, size_t n) {
        static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        int u = 0;

        while (b >= 1024 && u < 4)
                b /= 1024, u++;
        if (u == 0)
                snprintf(out, n, "%.0f B", b);
        else
                snprintf(out, n, "%.1f %s", b, unit[u]);
}

bool ctl_job_finished(json_object *job, bool *succeeded) {
        const char *s = str(job, "state", "");

        *succeeded = strcmp(s, "succeeded") == 0;
        return strcmp(s, "queued") != 0 && strcmp(s, "running") != 0 && s[0] != '\0';
}

/* The stage running now: the last one. */
static const char *current_stage(json_object *job) {
        json_object *stages;
        size_t n;

        if (!json_object_object_get_ex(job, "stages", &stages) || !json_object_is_type(stages, json_type_array) ||
            (n = json_object_array_length(stages)) == 0)
                return "";
        return str(json_object_array_get_idx(stages, n - 1), "name", "");
}

void ctl_job_line(json_object *job, bool bar, char *buf, size_t size) {
        json_object *p = NULL, *e = NULL, *stages = NULL;
        const char *state = str(job, "state", "?");
        size_t o = 0;
        bool ok;

        if (size == 0)
                return;
        buf[0] = '\0';
        if (ctl_job_finished(job, &ok)) {
                put(buf, size, &o, "%s", state);
                if (json_object_object_get_ex(job, "stages", &stages) && json_object_is_type(stages, json_type_array))
                        put(buf, size, &o, " %zu stage%s", json_object_array_length(stages),
                            json_object_array_length(stages) == 1 ? "" : "s");
                if (json_object_object_get_ex(job, "error", &e))
                        put(buf, size, &o, " %s: %s", str(e, "code", "?"), str(e, "message", ""));
                return;
        }
        put(buf, size, &o, "%s", state);
        if (current_stage(job)[0])
                put(buf, size, &o, " %s", current_stage(job));
        if (json_object_object_get_ex(job, "progress", &p)) {
                double pct = num(p, "percent_done");
                char done[32], total[32];

                if (pct < 0)
                        pct = 0;
                if (pct > 1)
                        pct = 1;
                put(buf, size, &o, " %3d%%", (int) (pct * 100));
                if (bar) {
                        int fill = (int) (pct * CTL_BAR_WIDTH);

                        put(buf, size, &o, " [");
                        for (int i = 0; i < CTL_BAR_WIDTH; i++)
                                put(buf, size, &o, "%c", i < fill ? '#' : '-');
                        put(buf, size, &o, "]");
                }
                human(num(p, "bytes_done"), done, sizeof done);
                human(num(p, "total_bytes"), total, sizeof total);
                put(buf, size, &o, " %s/%s %.0f/%.0f files", done, total, num(p, "files_done"),
                    num(p, "total_files"));
        }
}
