/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_AGENT_CONFIG_H
#define JABALI_AGENT_CONFIG_H

/* The daemon's configuration (design.md §7): /etc/jabali/jabali-agent.conf
 * plus every file named "*.conf" in /etc/jabali/agent.d, in libconfig 1.5
 * syntax.
 *
 * Loading:
 *  - the main file is read, then every "*.conf" of the drop-in directory in
 *    strcmp() name order (dotfiles and other names are ignored; a missing
 *    drop-in directory is fine);
 *  - files merge in that order: groups merge member by member, recursively;
 *    any other setting (scalar, array, list) set again replaces the earlier
 *    value, so an admin overrides a package snippet with a later file;
 *  - the merged tree is checked against a fixed schema: unknown keys, wrong
 *    types, out-of-range numbers and relative paths are errors;
 *  - libconfig 1.5 wraps integer literals above 32 bits silently, so every
 *    file (and every file it @includes) is scanned first and a literal
 *    without an L suffix outside int32 is refused;
 *  - user and group names are resolved here (NSS); an unknown name in the
 *    allow lists is a warning, an unknown socket group is an error.
 *
 * Every error is CONFIG_INVALID with the message "FILE:LINE: text" where
 * FILE is the path as given (main) or as found (drop-in dir + "/" + name).
 * Problems that concern a whole file (cannot open, too large) have no line
 * and read "FILE: text". Files are limited to 1 MiB.
 *
 * @include works as libconfig 1.5 does it: the line must hold nothing else
 * and a relative name resolves against the process's working directory, not
 * the including file (no include dir is set). Prefer the drop-in directory. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json_object.h>

#include <jabali/error.h>

#define CONFIG_DEFAULT_PATH "/etc/jabali/jabali-agent.conf"
#define CONFIG_DROPIN_NAME "agent.d"
#define CONFIG_FILE_MAX (1024 * 1024)
#define CONFIG_MODULE_NAME_MAX 32

typedef enum audit_fsync {
        AUDIT_FSYNC_ALWAYS,             /* fdatasync() after every record */
        AUDIT_FSYNC_NEVER,
} audit_fsync;

typedef enum apparmor_mode {
        APPARMOR_ENFORCE,               /* a worker that cannot enter its hat refuses to serve */
        APPARMOR_COMPLAIN,
        APPARMOR_OFF,
} apparmor_mode;

/* One module group, modules.<name>. */
struct module_conf {
        char *name;                     /* [a-z][a-z0-9_]{0,31} */
        bool enabled;                   /* default true: declaring a module enables it */
        bool optional;                  /* default false: a module that fails to load is fatal */
        uint32_t workers_max;           /* workers.max, 1..64, default 2 */
        uint32_t max_use;               /* workers.max_use, 1..1000000, default 500 */
        uint32_t queue;                 /* workers.queue, 1..65536, default 64 */
        uint64_t idle_timeout_ms;       /* workers.idle_timeout_ms, 1000..86400000, default 300000 */
        json_object *settings;          /* owned; the settings group as a JSON object (ints as
                                         * int64, floats as double, strings, bools, arrays and
                                         * lists as arrays, groups as objects); {} when absent */
        char *where;                    /* "FILE:LINE" of the module's group in the last file
                                         * that set it, for later messages */
};

struct agent_config {
        char *path;                     /* the main file, as given */

        char *socket_path;              /* absolute, < 108 bytes */
        char *socket_group;             /* NULL when socket.group = "" */
        gid_t socket_gid;               /* valid when has_socket_gid */
        bool has_socket_gid;
        mode_t socket_mode;             /* <= 0777 */

        uid_t *allow_uids;              /* resolved allow.users, no duplicates */
        size_t n_allow_uids;
        gid_t *allow_gids;              /* resolved allow.groups, no duplicates */
        size_t n_allow_gids;            /* n_allow_uids + n_allow_gids > 0 always */

        char *module_dir;               /* absolute */
        bool allow_insecure_modules;
        struct module_conf *modules;    /* sorted by name (strcmp) */
        size_t n_modules;

        char *audit_file;               /* absolute, or NULL when audit.file = "" */
        audit_fsync audit_fsync;
        bool audit_journal;

        apparmor_mode apparmor;

        uint32_t max_frame, max_depth, max_connections, max_connections_per_uid, max_pipeline;
        uint32_t read_timeout_ms, default_timeout_ms, max_timeout_ms;

        char *runtime_dir;              /* absolute */

        char **reload_command;          /* NULL-terminated argv template, NULL when not set;
                                         * argv[0] is absolute; "{unit}" is left as written */
        size_t n_reload_command;        /* not counting the NULL */
        uint32_t reload_window_ms;      /* 0..60000, default 250 */

        int log_level;                  /* syslog LOG_* */

        char **warnings;                /* "FILE:LINE: ..." lines for --check-config */
        size_t n_warnings;
};

/* Loads `path` and the drop-ins of `dropin_dir` (NULL: "<dirname(path)>/agent.d").
 * On success returns 0 and a new config in *ret (free with config_free()).
 * On failure returns -1 with err set to CONFIG_INVALID (INTERNAL when out of
 * memory) and leaves *ret untouched. */
int config_load(const char *path, const char *dropin_dir, struct agent_config **ret, jb_err *err);

/* Frees everything; accepts NULL. */
void config_free(struct agent_config *c);

/* The module named `name`, or NULL. */
const struct module_conf *config_module(const struct agent_config *c, const char *name);

/* "enforce", "complain", "off"; "unknown" when out of range. */
const char *apparmor_mode_to_string(apparmor_mode m);

#endif
