/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_PEER_H
#define JABALI_PEER_H

/* Who is on the other end of a connection, and may they ask. */

#include <stdbool.h>

#include "config.h"
#include "dispatch.h"

/* SO_PEERCRED of a connected unix socket (taken by the kernel at connect). */
int peer_read(int fd, struct peer *ret);

/* True when the peer's uid is in allow.users, or its primary or any
 * supplementary group (SO_PEERGROUPS) is in allow.groups. */
bool peer_allowed(const struct agent_config *cfg, int fd, const struct peer *peer);

#endif
