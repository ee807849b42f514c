/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_CTL_ARGS_H
#define JABALI_CTL_ARGS_H

/* jabali-agentctl's command line, turned into a request: option parsing,
 * the params syntax (JSON object or KEY=VALUE words) and the request
 * envelope. No I/O and no exit(): everything here is unit-tested.
 *
 * Usage errors (exit status 2) are returned as -1 with `err` set; the code
 * is INVALID_PARAMS for the params words and INVALID_REQUEST for the rest,
 * the message is meant to be printed after "jabali-agentctl: ". */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include <jabali/error.h>

#define CTL_PROGRAM "jabali-agentctl"
#define CTL_DEFAULT_SOCKET "/run/jabali-agent.sock"
#define CTL_SOCKET_ENV "JABALI_AGENT_SOCKET"
#define CTL_DEFAULT_TIMEOUT_MS 130000
#define CTL_MAX_TIMEOUT_MS 86400000     /* one day: --timeout above it is a usage error */

/* Nesting allowed inside one parameter value (a top-level object or array
 * is depth 1). The agent applies its own limit to the whole request. */
#define CTL_PARAM_MAX_DEPTH 32

/* "ctl-" + pid (at most 10 digits) + "-" + 16 hex digits + NUL. */
#define CTL_REQUEST_ID_MAX 64

typedef enum ctl_mode {
        CTL_MODE_RUN = 0,       /* send a request */
        CTL_MODE_HELP,          /* --help */
        CTL_MODE_VERSION,       /* --version (of the CLI) */
} ctl_mode;

typedef enum ctl_command {
        CTL_CMD_NONE = 0,
        CTL_CMD_CALL,
        CTL_CMD_ACTIONS,
        CTL_CMD_DESCRIBE,
        CTL_CMD_PING,
        CTL_CMD_VERSION,
        CTL_CMD_HEALTH,
        CTL_CMD_JOB_WATCH,      /* job watch JOB_ID: backup.job.get until the job ends */
} ctl_command;

typedef struct ctl_args {
        ctl_mode mode;
        ctl_command command;
        const char *socket_path;        /* borrowed: from argv, the environment or static */
        int timeout_ms;                 /* 1..CTL_MAX_TIMEOUT_MS */
        bool json;                      /* --json */
        bool dry_run;                   /* --dry-run */
        const char *action;             /* borrowed (argv or static); the "action" sent */
        json_object *params;            /* owned: the "params" sent, always an object */
} ctl_args;

/* Parses argv (argv[0] is the program name and is not looked at).
 * `env_socket` is the value of $JABALI_AGENT_SOCKET or NULL; an empty value
 * counts as unset. Options are only recognised before COMMAND.
 *
 * On success returns 0 and fills *ret, which then borrows from argv and
 * env_socket; free it with ctl_args_done(). With --help or --version the
 * mode says so and no command is required (nothing else is validated after
 * that option). On a usage error returns -1 with err set and *ret holding
 * nothing that needs freeing. Uses getopt_long(), so it is not reentrant. */
int ctl_args_parse(ctl_args *ret, int argc, char *const argv[], const char *env_socket, jb_err *err);

/* Frees what ctl_args_parse() allocated; safe to call twice. */
void ctl_args_done(ctl_args *a);

/* Converts the words after the action into a params object (new reference
 * in *ret): none → {}; exactly one word starting with '{' → that strict JSON
 * object; otherwise every word is
 *   KEY=VALUE   VALUE is used as JSON when it is strict JSON of any type,
 *               else as a string;
 *   KEY:=JSON   JSON must be strict JSON;
 *   KEY==TEXT   TEXT is always a string.
 * KEY is the text before the first '=' (without a ':' right before it).
 * Keys and strings must be valid UTF-8; keys must be non-empty and unique. */
int ctl_params_from_words(int n, char *const words[], json_object **ret, jb_err *err);

/* Parses --timeout: decimal seconds with at most three fractional digits,
 * greater than 0 and at most CTL_MAX_TIMEOUT_MS / 1000. */
int ctl_parse_timeout(const char *s, int *ret_ms, jb_err *err);

/* Writes "ctl-<pid>-<16 hex digits>" from the kernel's random source (the
 * clock when that is not ready yet): unique enough to pair a response with
 * its request in logs and audit. */
void ctl_request_id(char buf[static CTL_REQUEST_ID_MAX], long pid);

/* The request envelope as a new object:
 * {"action":…,"params":…,"request_id":…} plus "dry_run":true with --dry-run.
 * Returns NULL with err set (INTERNAL) when out of memory. */
json_object *ctl_request_new(const ctl_args *a, const char *request_id, jb_err *err);

/* The wire action of a command ("agent.ping", …); NULL for CTL_CMD_CALL and
 * CTL_CMD_NONE. */
const char *ctl_command_action(ctl_command c);

#endif
