/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_CTL_PROGRESS_H
#define JABALI_CTL_PROGRESS_H

/* `jabali-agentctl job watch`: a job record (what backup.job.get answers
 * as "job") as one line of text. Pure: no I/O, unit-tested. */

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

/* Columns of the bar between the brackets. */
#define CTL_BAR_WIDTH 24

/* Writes e.g.
 *   running home 42% [##########--------------] 1.2 GiB/3.0 GiB 120/300 files
 * or, once the job ended,
 *   succeeded 3 stages
 *   failed REPO_LOCKED: the repository is locked ...
 * into buf (always NUL-terminated, cut to size). Text from the record is
 * cleaned of control characters. With bar false, no bar is drawn (for a
 * log, one line per change). */
void ctl_job_line(json_object *job, bool bar, char *buf, size_t size);

/* True when the job's state is final; *succeeded tells whether it is
 * "succeeded". */
bool ctl_job_finished(json_object *job, bool *succeeded);

#endif
