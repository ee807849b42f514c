/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_VISIBILITY_H
#define JABALI_VISIBILITY_H

/* libjabali and every module are built with -fvisibility=hidden; only what is
 * marked JB_EXPORT is part of the SDK's ABI. */
#define JB_EXPORT __attribute__((visibility("default")))

#endif
