/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_FS_INTERNAL_H
#define JABALI_FS_INTERNAL_H

/* Private to libjabali and its tests; not installed, not exported. */

#include <stdbool.h>

/* Makes every resolution beneath a root take the openat() walk that is used
 * when the kernel has no openat2() (ENOSYS), so tests exercise both paths.
 * Process-wide; meant to be flipped between tests, not while other threads
 * resolve paths. */
void jb_fs_test_force_fallback(bool on);

/* Makes the first temporary name jb_fs_write_atomic() tries use this
 * suffix (at most 6 bytes) instead of a random one, so that a test can
 * plant something there first. NULL restores random names. */
void jb_fs_test_set_tmp_suffix(const char *suffix);

#endif
