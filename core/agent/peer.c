/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Peer credentials and the allow-list. */

#include <sys/socket.h>

#include "peer.h"
#include "util.h"

int peer_read(int fd, struct peer *ret) {
        struct ucred uc;
        socklen_t len = sizeof uc;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
                return -errno;
        if (len != sizeof uc)
                return -EIO;
        *ret = (struct peer) { .pid = uc.pid, .uid = uc.uid, .gid = uc.gid };
        return 0;
}

static bool gid_allowed(const struct agent_config *cfg, gid_t gid) {
        for (size_t i = 0; i < cfg->n_allow_gids; i++)
                if (cfg->allow_gids[i] == gid)
                        return true;
        return false;
}

bool peer_allowed(const struct agent_config *cfg, int fd, const struct peer *peer) {
        gid_t groups[256];
        socklen_t len = sizeof groups;

        for (size_t i = 0; i < cfg->n_allow_uids; i++)
                if (cfg->allow_uids[i] == peer->uid)
                        return true;
        if (cfg->n_allow_gids == 0)
                return false;
        if (gid_allowed(cfg, peer->gid))
                return true;
        /* Supplementary groups, as they were at connect(). A peer in more
         * than 256 groups gets ERANGE and is judged on uid and primary gid. */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
                return false;
        for (size_t i = 0; i < len / sizeof(gid_t); i++)
                if (gid_allowed(cfg, groups[i]))
                        return true;
        return false;
}
