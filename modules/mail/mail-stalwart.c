/* SPDX-License-Identifier: GPL-3.0-or-later */
/* placeholder */
#include "mail-internal.h"
static int todo(mail_ctx *ctx, const mail_req *r, jb_err *err) {
        (void) ctx; (void) r;
        return jb_err_set(err, JB_E_MODULE_UNAVAILABLE, "not yet");
}
const mail_backend mail_backend_stalwart = {
        .name = "stalwart", .domain_upsert = todo, .domain_delete = todo, .mailbox_create = todo,
        .mailbox_passwd = todo, .mailbox_set_quota = todo, .mailbox_delete = todo, .mailbox_get = todo,
        .mailbox_list = todo, .mailbox_usage = todo, .forwarder_upsert = todo, .forwarder_delete = todo,
        .autoresponder_upsert = todo, .autoresponder_delete = todo, .catchall_set = todo,
};
