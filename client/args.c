/* SPDX-License-Identifier: GPL-3.0-or-later */
/* jabali-agentctl: command line → request. */

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/un.h>
#include <time.h>

#include "args.h"
#include "jsoncheck.h"
#include "util.h"

static const struct {
        const char *name;
        ctl_command command;
        const char *action;
} commands[] = {
        { "call",     CTL_CMD_CALL,     NULL },
        { "actions",  CTL_CMD_ACTIONS,  "agent.actions" },
        { "describe", CTL_CMD_DESCRIBE, "agent.describe" },
        { "ping",     CTL_CMD_PING,     "agent.ping" },
        { "version",  CTL_CMD_VERSION,  "agent.version" },
        { "health",   CTL_CMD_HEALTH,   "agent.health" },
        { "job",      CTL_CMD_JOB_WATCH, "backup.job.get" },
};

const char *ctl_command_action(ctl_command c) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (commands[i].command == c)
                        return commands[i].action;
        return NULL;
}

static bool utf8_valid(const char *s) {
        size_t n = strlen(s);

        while (n > 0) {
                size_t k = utf8_sequence_len((const uint8_t *) s, n);

                if (k == 0)
                        return false;
                s += k;
                n -= k;
        }
        return true;
}

int ctl_parse_timeout(const char *s, int *ret_ms, jb_err *err) {
        const char *p = s;
        uint64_t ms = 0;
        unsigned frac = 0;

        /* Hand-rolled rather than strtod(): no locale, no "inf", "1e9" or hex. */
        if (!(*p >= '0' && *p <= '9'))
                goto invalid;
        for (; *p >= '0' && *p <= '9'; p++) {
                ms = ms * 10 + (uint64_t) (*p - '0');
                if (ms > CTL_MAX_TIMEOUT_MS / 1000)
                        goto range;
        }
        ms *= 1000;
        if (*p == '.') {
                p++;
                if (!(*p >= '0' && *p <= '9'))
                        goto invalid;
                for (uint64_t scale = 100; *p >= '0' && *p <= '9'; p++, frac++, scale /= 10) {
                        if (frac >= 3)
                                return jb_err_set(err, JB_E_INVALID_REQUEST,
                                                  "--timeout '%s': at most three decimals (milliseconds)", s);
                        ms += (uint64_t) (*p - '0') * scale;
                }
        }
        if (*p != '\0')
                goto invalid;
        if (ms == 0 || ms > CTL_MAX_TIMEOUT_MS)
                goto range;
        *ret_ms = (int) ms;
        return 0;

invalid:
        return jb_err_set(err, JB_E_INVALID_REQUEST, "--timeout '%s': not a number of seconds", s);
range:
        return jb_err_set(err, JB_E_INVALID_REQUEST, "--timeout '%s': must be more than 0 and at most %d seconds",
                          s, CTL_MAX_TIMEOUT_MS / 1000);
}

static int check_socket_path(const char *path, const char *origin, jb_err *err) {
        struct sockaddr_un sa;

        if (path[0] == '\0')
                return jb_err_set(err, JB_E_INVALID_REQUEST, "%s: empty socket path", origin);
        if (strlen(path) >= sizeof(sa.sun_path))
                return jb_err_set(err, JB_E_INVALID_REQUEST, "%s: socket path longer than %zu bytes",
                                  origin, sizeof(sa.sun_path) - 1);
        return 0;
}

/* Adds `v` under `key`; v is NULL for JSON null. The object takes our
 * reference on success; json-c leaves it with us on failure, so it is
 * dropped here: either way the caller no longer owns v. */
static int add_member(json_object *o, const char *key, json_object *v) {
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -1;
        }
        return 0;
}

/* json-c has no object for JSON null (it is the NULL pointer), and
 * json_parse_strict() cannot tell it from a failure: null is recognised here. */
static bool is_json_null(const char *s) {
        static const char ws[] = " \t\n\r";

        s += strspn(s, ws);
        if (strncmp(s, "null", 4) != 0)
                return false;
        s += 4;
        s += strspn(s, ws);
        return *s == '\0';
}

/* Parses a JSON text from the command line into *ret (a new reference, or
 * NULL for null). The message names `what`. */
static int parse_json_word(const char *text, const char *what, json_object **ret, jb_err *err) {
        jb_err e = JB_ERR_INIT;
        json_object *o;

        if (is_json_null(text)) {
                *ret = NULL;
                return 0;
        }
        o = json_parse_strict(text, strlen(text), CTL_PARAM_MAX_DEPTH, &e);
        if (!o)
                return jb_err_set(err, streq(e.code, "INTERNAL") ? JB_E_INTERNAL : JB_E_INVALID_PARAMS,
                                  "%s: not valid JSON (%s)", what, e.msg);
        *ret = o;
        return 0;
}

/* One KEY=VALUE, KEY:=JSON or KEY==TEXT word, added to `params`. */
static int add_param_word(json_object *params, const char *word, jb_err *err) {
        const char *eq = strchr(word, '=');
        _cleanup_free_ char *key = NULL;
        const char *value;
        json_object *v;
        size_t keylen;
        enum { AUTO, FORCE_JSON, FORCE_STRING } kind = AUTO;

        if (!eq)
                return jb_err_set(err, JB_E_INVALID_PARAMS,
                                  "'%s': expected KEY=VALUE, KEY:=JSON or KEY==TEXT", word);
        keylen = (size_t) (eq - word);
        value = eq + 1;
        if (keylen > 0 && eq[-1] == ':') {
                kind = FORCE_JSON;
                keylen--;
        } else if (*value == '=') {
                kind = FORCE_STRING;
                value++;
        }
        if (keylen == 0)
                return jb_err_set(err, JB_E_INVALID_PARAMS, "'%s': empty parameter name", word);

        key = strndup(word, keylen);
        if (!key)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        if (!utf8_valid(key))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "parameter name is not valid UTF-8");
        if (json_object_object_get_ex(params, key, NULL))
                return jb_err_set(err, JB_E_INVALID_PARAMS, "parameter '%s' given more than once", key);

        switch (kind) {
        case FORCE_JSON:
                if (parse_json_word(value, key, &v, err) < 0)
                        return -1;
                break;
        case AUTO:
                /* Only text that starts like a JSON value and has no surrounding
                 * blanks is tried: " 42" stays the string it looks like. */
                if (*value != '\0' && strchr("{[\"-0123456789tfn", *value) &&
                    !strchr(" \t\n\r", value[strlen(value) - 1]) &&
                    parse_json_word(value, key, &v, NULL) == 0)
                        break;
                __attribute__((fallthrough));
        case FORCE_STRING:
        default:
                if (!utf8_valid(value))
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "%s: value is not valid UTF-8", key);
                v = json_object_new_string(value);
                if (!v)
                        return jb_err_set(err, JB_E_INTERNAL, "out of memory");
                break;
        }

        if (add_member(params, key, v) < 0)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        return 0;
}

int ctl_params_from_words(int n, char *const words[], json_object **ret, jb_err *err) {
        json_object *params;

        if (n > 0 && words[0][0] == '{') {
                if (n > 1)
                        return jb_err_set(err, JB_E_INVALID_PARAMS,
                                          "a JSON params object must be the only argument after the action");
                if (parse_json_word(words[0], "params", &params, err) < 0)
                        return -1;
                if (!json_object_is_type(params, json_type_object)) {
                        json_object_put(params);
                        return jb_err_set(err, JB_E_INVALID_PARAMS, "params: not a JSON object");
                }
                *ret = params;
                return 0;
        }

        params = json_object_new_object();
        if (!params)
                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
        for (int i = 0; i < n; i++)
                if (add_param_word(params, words[i], err) < 0) {
                        json_object_put(params);
                        return -1;
                }
        *ret = params;
        return 0;
}

static ctl_command lookup_command(const char *name, const char **ret_action) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, name)) {
                        *ret_action = commands[i].action;
                        return commands[i].command;
                }
        return CTL_CMD_NONE;
}

/* The words after COMMAND. */
static int parse_command_args(ctl_args *a, const char *name, int n, char *const words[], jb_err *err) {
        for (int i = 0; i < n; i++)
                if (words[i][0] == '-' && words[i][1] != '\0')
                        return jb_err_set(err, JB_E_INVALID_REQUEST,
                                          "%s: unexpected option '%s' (options go before the command)",
                                          name, words[i]);

        switch (a->command) {
        case CTL_CMD_CALL:
                if (n < 1)
                        return jb_err_set(err, JB_E_INVALID_REQUEST, "call: missing ACTION");
                if (words[0][0] == '\0')
                        return jb_err_set(err, JB_E_INVALID_REQUEST, "call: empty ACTION");
                if (!utf8_valid(words[0]))
                        return jb_err_set(err, JB_E_INVALID_REQUEST, "call: ACTION is not valid UTF-8");
                a->action = words[0];
                return ctl_params_from_words(n - 1, words + 1, &a->params, err);

        case CTL_CMD_JOB_WATCH:
                if (n != 2 || !streq(words[0], "watch"))
                        return jb_err_set(err, JB_E_INVALID_REQUEST, "job: usage: job watch JOB_ID");
                if (words[1][0] == '\0' || !utf8_valid(words[1]))
                        return jb_err_set(err, JB_E_INVALID_REQUEST, "job watch: JOB_ID is empty or not UTF-8");
                a->params = json_object_new_object();
                if (!a->params || add_member(a->params, "job_id", json_object_new_string(words[1])) < 0)
                        return jb_err_set(err, JB_E_INTERNAL, "out of memory");
                return 0;

        case CTL_CMD_DESCRIBE:
                if (n > 1)
                        return jb_err_set(err, JB_E_INVALID_REQUEST, "describe: takes at most one ACTION");
                a->params = json_object_new_object();
                if (!a->params)
                        return jb_err_set(err, JB_E_INTERNAL, "out of memory");
                if (n == 1) {
                        if (words[0][0] == '\0')
                                return jb_err_set(err, JB_E_INVALID_REQUEST, "describe: empty ACTION");
                        if (!utf8_valid(words[0]))
                                return jb_err_set(err, JB_E_INVALID_REQUEST, "describe: ACTION is not valid UTF-8");
                        json_object *s = json_object_new_string(words[0]);

                        if (!s || add_member(a->params, "action", s) < 0)
                                return jb_err_set(err, JB_E_INTERNAL, "out of memory");
                }
                return 0;

        default:
                if (n > 0)
                        return jb_err_set(err, JB_E_INVALID_REQUEST, "%s: takes no arguments", name);
                a->params = json_object_new_object();
                if (!a->params)
                        return jb_err_set(err, JB_E_INTERNAL, "out of memory");
                return 0;
        }
}

int ctl_args_parse(ctl_args *ret, int argc, char *const argv[], const char *env_socket, jb_err *err) {
        static const struct option options[] = {
                { "socket",  required_argument, NULL, 's' },
                { "timeout", required_argument, NULL, 't' },
                { "json",    no_argument,       NULL, 'j' },
                { "dry-run", no_argument,       NULL, 'n' },
                { "help",    no_argument,       NULL, 'h' },
                { "version", no_argument,       NULL, 'V' },
                {}
        };
        ctl_args a = {
                .socket_path = CTL_DEFAULT_SOCKET,
                .timeout_ms = CTL_DEFAULT_TIMEOUT_MS,
        };
        const char *socket_origin = NULL;
        const char *name;
        int c;

        *ret = (ctl_args) {};
        if (env_socket && env_socket[0] != '\0') {
                a.socket_path = env_socket;
                socket_origin = "$" CTL_SOCKET_ENV;
        }

        /* '+': stop at the first non-option, so that params words are never
         * taken for options; ':': report a missing argument as ':'. optind = 0
         * makes glibc start over on every call (the tests parse many lines). */
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:s:t:jnhV", options, NULL)) >= 0) {
                switch (c) {
                case 's':
                        a.socket_path = optarg;
                        socket_origin = "--socket";
                        break;
                case 't':
                        if (ctl_parse_timeout(optarg, &a.timeout_ms, err) < 0)
                                return -1;
                        break;
                case 'j':
                        a.json = true;
                        break;
                case 'n':
                        a.dry_run = true;
                        break;
                case 'h':
                        ret->mode = CTL_MODE_HELP;
                        return 0;
                case 'V':
                        ret->mode = CTL_MODE_VERSION;
                        return 0;
                case ':':
                        return jb_err_set(err, JB_E_INVALID_REQUEST, "option '%s' needs an argument",
                                          argv[optind - 1]);
                default:
                        if (optopt != 0)
                                return jb_err_set(err, JB_E_INVALID_REQUEST, "unknown option '-%c'", optopt);
                        return jb_err_set(err, JB_E_INVALID_REQUEST, "unknown option '%s'", argv[optind - 1]);
                }
        }

        if (socket_origin && check_socket_path(a.socket_path, socket_origin, err) < 0)
                return -1;

        if (optind >= argc)
                return jb_err_set(err, JB_E_INVALID_REQUEST, "missing COMMAND");
        name = argv[optind];
        a.command = lookup_command(name, &a.action);
        if (a.command == CTL_CMD_NONE)
                return jb_err_set(err, JB_E_INVALID_REQUEST, "unknown command '%s'", name);

        if (parse_command_args(&a, name, argc - optind - 1, argv + optind + 1, err) < 0) {
                ctl_args_done(&a);
                return -1;
        }

        *ret = a;
        return 0;
}

void ctl_args_done(ctl_args *a) {
        if (!a)
                return;
        json_object_put(a->params);
        a->params = NULL;
}

void ctl_request_id(char buf[static CTL_REQUEST_ID_MAX], long pid) {
        uint64_t r;

        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t) sizeof r) {
                struct timespec ts = {};

                /* Early boot: the pool is not ready. Uniqueness, not secrecy, is
                 * what a request id needs. */
                (void) clock_gettime(CLOCK_REALTIME, &ts);
                r = (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
        }
        (void) snprintf(buf, CTL_REQUEST_ID_MAX, "ctl-%ld-%016llx", pid, (unsigned long long) r);
}

json_object *ctl_request_new(const ctl_args *a, const char *request_id, jb_err *err) {
        json_object *req = json_object_new_object();
        json_object *action = json_object_new_string(a->action);
        json_object *params = a->params ? json_object_get(a->params) : json_object_new_object();
        json_object *id = json_object_new_string(request_id);
        json_object *dry_run = a->dry_run ? json_object_new_boolean(1) : NULL;
        int r;

        if (!req || !action || !params || !id || (a->dry_run && !dry_run)) {
                json_object_put(req);
                json_object_put(action);
                json_object_put(params);
                json_object_put(id);
                json_object_put(dry_run);
                goto oom;
        }
        /* add_member() consumes each value, so every one is passed on even
         * after a failure. */
        r = add_member(req, "action", action);
        r |= add_member(req, "params", params);
        r |= add_member(req, "request_id", id);
        if (dry_run)
                r |= add_member(req, "dry_run", dry_run);
        if (r < 0) {
                json_object_put(req);
                goto oom;
        }
        return req;

oom:
        (void) jb_err_set(err, JB_E_INTERNAL, "out of memory");
        return NULL;
}
