/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The mail module: mail domains, mailboxes, forwarders, autoresponders and
 * catch-alls, on one of two backends chosen in the settings: Stalwart's
 * JMAP management API, or Dovecot + Postfix files. The descriptor, the
 * action table, the schemas and the settings; see README.md. */

#include <string.h>
#include <unistd.h>

#include <jabali/fs.h>
#include <jabali/module.h>

#include "mail-internal.h"

void mail_cfg_from_settings(json_object *s, mail_cfg *c) {
        c->backend = jb_settings_str(s, "backend", "stalwart");
        c->lock_dir = jb_settings_str(s, "lock_dir", "/run/jabali-agent/locks");
        c->users_dir = jb_settings_str(s, "users_dir", "/etc/dovecot/jabali");
        c->maps_dir = jb_settings_str(s, "maps_dir", "/etc/postfix/jabali");
        c->mail_root = jb_settings_str(s, "mail_root", "/var/mail/vhosts");
        c->mail_uid = jb_settings_int(s, "mail_uid", 8);
        c->mail_gid = jb_settings_int(s, "mail_gid", 8);
        c->users_group = jb_settings_str(s, "users_group", "dovecot");
        c->doveadm = jb_settings_str(s, "doveadm", "/usr/bin/doveadm");
        c->dovecot_config = jb_settings_str(s, "dovecot_config", "/etc/dovecot/dovecot.conf");
        c->postmap = jb_settings_str(s, "postmap", "/usr/sbin/postmap");
        c->postfix_config_dir = jb_settings_str(s, "postfix_config_dir", "/etc/postfix");
        c->postfix_unit = jb_settings_str(s, "postfix_unit", "postfix.service");
        c->stalwart_url = jb_settings_str(s, "stalwart_url", "http://127.0.0.1:8446/jmap");
        c->stalwart_token_file = jb_settings_str(s, "stalwart_token_file", "/etc/jabali/stalwart-admin.token");
        c->stalwart_timeout_ms = jb_settings_int(s, "stalwart_timeout_ms", 5000);
}

/* Abandoned temporary files of interrupted atomic writes in the shared
 * directories go (homes are many: their temporaries are overwritten by
 * the next write of the same name and ignored by Dovecot meanwhile). */
static int worker_init(json_object *settings, jb_err *err) {
        mail_cfg c;
        const char *dirs[2];

        (void) err;
        mail_cfg_from_settings(settings, &c);
        if (strcmp(c.backend, "dovecot") != 0) {
                mail_stalwart_init();
                return 0;
        }
        dirs[0] = c.users_dir;
        dirs[1] = c.maps_dir;
        for (size_t i = 0; i < 2; i++) {
                int fd = jb_fs_open_root(dirs[i], NULL);
                if (fd < 0)
                        continue;
                (void) jb_fs_clean_temps(fd, ".", NULL);
                close(fd);
        }
        return 0;
}

/* ---- parameter schemas ---- */

#define DOMAIN_P JB_P_STRING("domain", JB_CHECK_DOMAIN, JB_REQUIRED, "the mail domain")
#define LOCAL_P \
        JB_P_STRLEN("local_part", JB_CHECK_EMAIL_LOCAL, JB_REQUIRED, 1, 64, \
                    "the mailbox's local part (lower case, not starting with '-')")
#define HASH_P \
        JB_P_STRLEN("password_hash", JB_CHECK_NONE, JB_REQUIRED | JB_SECRET, 1, 512, \
                    "crypt hash: SHA512-CRYPT ($6$), bcrypt ($2y$) or argon2id ($argon2id$); never plaintext")
#define QUOTA_P(fl) JB_P_INT("quota_mib", JB_CHECK_NONE, (fl), 0, 16777216, "storage quota in MiB, 0 = no limit")
#define PURGE_P(d) JB_P_BOOL("purge", 0, d)
#define ADDRESS_P JB_P_STRLEN("address", JB_CHECK_EMAIL, JB_REQUIRED, 3, 254, "the mailbox's address")

static const jb_param domain_params[] = { DOMAIN_P, JB_P_END };
static const jb_param domain_delete_params[] = {
        DOMAIN_P, PURGE_P("also delete its mailboxes and their mail; without it a domain with mailboxes is CONFLICT"),
        JB_P_END
};
static const jb_param mailbox_create_params[] = { DOMAIN_P, LOCAL_P, HASH_P, QUOTA_P(0), JB_P_END };
static const jb_param mailbox_passwd_params[] = { DOMAIN_P, LOCAL_P, HASH_P, JB_P_END };
static const jb_param mailbox_quota_params[] = { DOMAIN_P, LOCAL_P, QUOTA_P(JB_REQUIRED), JB_P_END };
static const jb_param mailbox_delete_params[] = {
        DOMAIN_P, LOCAL_P, PURGE_P("also delete the mailbox's mail (kept by default)"), JB_P_END
};
static const jb_param mailbox_key_params[] = { DOMAIN_P, LOCAL_P, JB_P_END };

static const jb_param alias_item[] = {
        JB_P_STRLEN("alias", JB_CHECK_EMAIL_LOCAL, 0, 1, 64, "a local part in the mailbox's domain"), JB_P_END
};
static const jb_param external_fields[] = {
        JB_P_STRLEN("target", JB_CHECK_EMAIL, JB_REQUIRED, 3, 254, "where copies go"),
        JB_P_BOOL("keep_copy", 0, "the mailbox keeps a copy too (when any target asks for it)"),
        JB_P_END
};
static const jb_param external_item[] = { JB_P_OBJECT("external", external_fields, 0, "a forward"), JB_P_END };
static const jb_param forwarder_params[] = {
        ADDRESS_P,
        JB_P_ARRAY("aliases", alias_item, 0, 0, MAIL_ALIASES_MAX, "other local parts delivered to the mailbox"),
        JB_P_ARRAY("externals", external_item, 0, 0, MAIL_EXTERNALS_MAX, "addresses mail is forwarded to"),
        JB_P_END
};
static const jb_param address_params[] = { ADDRESS_P, JB_P_END };
static const jb_param autoresponder_params[] = {
        ADDRESS_P,
        JB_P_STRLEN("subject", JB_CHECK_NONE, JB_REQUIRED, 1, MAIL_SUBJECT_MAX, "the reply's subject"),
        JB_P_STRLEN("body", JB_CHECK_MULTILINE, JB_REQUIRED, 1, MAIL_BODY_MAX, "the reply's text"),
        JB_P_STRLEN("start", JB_CHECK_NONE, 0, 10, 10, "first day (YYYY-MM-DD, server time), inclusive"),
        JB_P_STRLEN("end", JB_CHECK_NONE, 0, 10, 10, "last day (YYYY-MM-DD, server time), inclusive"),
        JB_P_INT("interval_days", JB_CHECK_NONE, 0, 1, 365, "one reply per sender per this many days; default 1"),
        JB_P_END
};
static const jb_param catchall_params[] = {
        DOMAIN_P,
        JB_P_STRLEN("target", JB_CHECK_EMAIL, 0, 3, 254, "where mail for unknown local parts goes; absent: none"),
        JB_P_END
};

/* ---- settings ---- */

static const char *const backends[] = { "stalwart", "dovecot", NULL };

#define PATH_SETTING(n, d) JB_P_STRLEN(n, JB_CHECK_NONE, 0, 1, 1024, d)

static const jb_param settings[] = {
        JB_P_ENUM("backend", backends, 0, "stalwart (JMAP management API) or dovecot (Dovecot + Postfix files); "
                                          "default stalwart"),
        PATH_SETTING("lock_dir", "where the module's lock lives; default /run/jabali-agent/locks"),
        PATH_SETTING("users_dir", "dovecot: holds the passwd-file 'users'; default /etc/dovecot/jabali"),
        PATH_SETTING("maps_dir", "dovecot: holds the Postfix maps domains, mailboxes, aliases; "
                                 "default /etc/postfix/jabali"),
        PATH_SETTING("mail_root", "dovecot: homes are <mail_root>/<domain>/<local>; default /var/mail/vhosts"),
        JB_P_INT("mail_uid", JB_CHECK_NONE, 0, 1, 4294967294LL, "dovecot: owner of the mail; default 8 (mail)"),
        JB_P_INT("mail_gid", JB_CHECK_NONE, 0, 1, 4294967294LL, "dovecot: group of the mail; default 8 (mail)"),
        JB_P_STRING("users_group", JB_CHECK_USERNAME, 0, "dovecot: group that may read the passwd-file "
                                                         "(Dovecot's auth process); default dovecot"),
        PATH_SETTING("doveadm", "dovecot: the doveadm binary; default /usr/bin/doveadm"),
        PATH_SETTING("dovecot_config", "dovecot: doveadm -c; default /etc/dovecot/dovecot.conf"),
        PATH_SETTING("postmap", "dovecot: the postmap binary; default /usr/sbin/postmap"),
        PATH_SETTING("postfix_config_dir", "dovecot: postmap -c; default /etc/postfix"),
        JB_P_STRLEN("postfix_unit", JB_CHECK_NONE, 0, 0, 255, "dovecot: the unit reloaded when the domain list "
                                                              "changes (\"\": none); default postfix.service"),
        PATH_SETTING("stalwart_url", "stalwart: the JMAP endpoint on loopback; default http://127.0.0.1:8446/jmap"),
        PATH_SETTING("stalwart_token_file", "stalwart: root-only file with the admin token; "
                                            "default /etc/jabali/stalwart-admin.token"),
        JB_P_INT("stalwart_timeout_ms", JB_CHECK_NONE, 0, 100, 60000, "stalwart: per-request timeout; default 5000"),
        JB_P_END
};

/* A path that goes into a passwd-file field: no ':' and no blank. */
static bool plain_path(const char *p) {
        if (p[0] != '/')
                return false;
        for (; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr("/._-", *p)))
                        return false;
        return true;
}

/* The admin token must never leave the host: loopback URLs only. */
static bool loopback_url(const char *u) {
        static const char *const ok[] = { "http://127.0.0.1:", "http://127.0.0.1/", "http://[::1]:",
                                          "http://[::1]/", "http://localhost:", "http://localhost/" };
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
                if (strncmp(u, ok[i], strlen(ok[i])) == 0)
                        return true;
        return false;
}

static int init(json_object *s, jb_err *err) {
        static const char *const paths[] = { "lock_dir", "users_dir", "maps_dir", "doveadm", "dovecot_config",
                                             "postmap", "postfix_config_dir", "stalwart_token_file" };
        mail_cfg c;
        json_object *v;

        for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
                if (json_object_object_get_ex(s, paths[i], &v) && json_object_get_string(v)[0] != '/')
                        return jb_err_set(err, JB_E_CONFIG_INVALID, "%s must be an absolute path", paths[i]);
        mail_cfg_from_settings(s, &c);
        if (!plain_path(c.mail_root))
                return jb_err_set(err, JB_E_CONFIG_INVALID, "mail_root must be an absolute path of [A-Za-z0-9._/-]");
        if (!loopback_url(c.stalwart_url))
                return jb_err_set(err, JB_E_CONFIG_INVALID, "stalwart_url must be an http:// URL on loopback");
        return 0;
}

/* ---- actions ---- */

#define WRITER (JB_ACTION_MUTATING | JB_ACTION_DRY_RUN)

static const char *const errors[] = { MAIL_E_REJECTED, MAIL_E_AUTH, NULL };

#define ACTION(n, h, p, s, fl, lk) \
        { .name = (n), .handler = (h), .params = (p), .summary = (s), .flags = (fl), .timeout_ms = 30000, \
          .lock = (lk), .errors = errors }

static const jb_action actions[] = {
        ACTION("mail.domain.upsert", mail_domain_upsert, domain_params, "make a domain a mail domain", WRITER,
               "domain"),
        ACTION("mail.domain.delete", mail_domain_delete, domain_delete_params,
               "remove a mail domain (CONFLICT while it has mailboxes, unless purge)", WRITER, "domain"),
        ACTION("mail.mailbox.create", mail_mailbox_create, mailbox_create_params,
               "create or converge a mailbox (password hash, quota)", WRITER, "domain"),
        ACTION("mail.mailbox.passwd", mail_mailbox_passwd, mailbox_passwd_params,
               "set a mailbox's password hash; effective at once", WRITER, "domain"),
        ACTION("mail.mailbox.set_quota", mail_mailbox_set_quota, mailbox_quota_params, "set a mailbox's quota",
               WRITER, "domain"),
        ACTION("mail.mailbox.delete", mail_mailbox_delete, mailbox_delete_params,
               "remove a mailbox (its mail is kept unless purge)", WRITER, "domain"),
        ACTION("mail.mailbox.get", mail_mailbox_get, mailbox_key_params, "one mailbox", 0, NULL),
        ACTION("mail.mailbox.list", mail_mailbox_list, domain_params, "the mailboxes of a domain", 0, NULL),
        ACTION("mail.mailbox.usage", mail_mailbox_usage, mailbox_key_params, "storage used by a mailbox", 0, NULL),
        ACTION("mail.forwarder.upsert", mail_forwarder_upsert, forwarder_params,
               "a mailbox's aliases and forwards, as the full desired state", WRITER, "address"),
        ACTION("mail.forwarder.delete", mail_forwarder_delete, address_params,
               "remove a mailbox's aliases and forwards", WRITER, "address"),
        ACTION("mail.autoresponder.upsert", mail_autoresponder_upsert, autoresponder_params,
               "a mailbox's autoresponder", WRITER, "address"),
        ACTION("mail.autoresponder.delete", mail_autoresponder_delete, address_params,
               "remove a mailbox's autoresponder", WRITER, "address"),
        ACTION("mail.catchall.set", mail_catchall_set, catchall_params,
               "where mail for unknown local parts of a domain goes (target absent: nowhere)", WRITER, "domain"),
        { .name = NULL }
};

JABALI_MODULE(.name = "mail", .version = "1.0.0", .hat = "mail",
              .summary = "mail domains, mailboxes, forwarders, autoresponders, catch-alls", .actions = actions,
              .settings = settings, .init = init, .worker_init = worker_init);
