/* SPDX-License-Identifier: GPL-3.0-or-later */
/* jabali-agentctl: send one request to jabali-agent and show the answer. */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "client.h"
#include "progress.h"
#include "util.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

enum {
        EXIT_OK = 0,
        EXIT_ERROR_RESPONSE = 1,        /* the agent answered ok:false */
        EXIT_USAGE = 2,
        EXIT_TRANSPORT = 3,             /* connect, I/O, timeout, malformed response */
};

static void help(void) {
        printf("Usage: %1$s [OPTION...] COMMAND [ARG...]\n"
               "\n"
               "Send one request to jabali-agent and print the answer.\n"
               "\n"
               "Commands:\n"
               "  call ACTION [PARAMS]   call an action; PARAMS is one JSON object or\n"
               "                         KEY=VALUE words (see below)\n"
               "  actions                list the actions the agent offers\n"
               "  describe [ACTION]      show the parameter schema of one or every action\n"
               "  ping                   check that the agent answers\n"
               "  version                show the agent's version\n"
               "  health                 show the agent's health report\n"
               "  job watch JOB_ID       follow a backup job until it ends, with a progress\n"
               "                         bar on a terminal; exit 0 only if it succeeded\n"
               "\n"
               "Options:\n"
               "  -s, --socket=PATH      agent socket (default $%2$s, else %3$s)\n"
               "  -t, --timeout=SECONDS  give up after this long, connecting included\n"
               "                         (default %4$d; decimals allowed, e.g. 2.5)\n"
               "  -j, --json             print the response as raw JSON on one line\n"
               "  -n, --dry-run          ask the agent to report the change, not to apply it\n"
               "  -h, --help             show this help\n"
               "  -V, --version          show the version of %1$s\n"
               "\n"
               "Parameters:\n"
               "  KEY=VALUE    VALUE as JSON when it is valid JSON (42, true, null, [1,2],\n"
               "               {\"a\":1}, \"quoted\"), otherwise as a string\n"
               "  KEY:=JSON    VALUE must be valid JSON\n"
               "  KEY==TEXT    TEXT is always a string (KEY==true sends \"true\")\n"
               "\n"
               "Exit status: 0 ok, 1 the agent answered with an error, 2 usage error,\n"
               "3 cannot connect, I/O error, timeout or malformed response.\n"
               "See %1$s(1).\n",
               CTL_PROGRAM, CTL_SOCKET_ENV, CTL_DEFAULT_SOCKET, CTL_DEFAULT_TIMEOUT_MS / 1000);
}

/* Text from the agent goes to a terminal: control characters (escape
 * sequences, newlines that would forge extra lines) are shown as '?'. */
static void put_clean(FILE *f, const char *s) {
        for (; *s; s++)
                fputc((unsigned char) *s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

static void print_error_response(const client_response *r) {
        fputs(CTL_PROGRAM ": error: ", stderr);
        put_clean(stderr, r->code);
        fputs(": ", stderr);
        put_clean(stderr, r->message);
        fputc('\n', stderr);
}

/* One line of JSON: the bytes as received unless they span several lines. */
static void print_raw(const client_response *r) {
        if (!memchr(r->raw, '\n', r->raw_len) && !memchr(r->raw, '\r', r->raw_len))
                fwrite(r->raw, 1, r->raw_len, stdout);
        else
                fputs(json_object_to_json_string_ext(r->root, JSON_C_TO_STRING_PLAIN |
                                                     JSON_C_TO_STRING_NOSLASHESCAPE), stdout);
        fputc('\n', stdout);
}

/* agent.actions answers {"actions":[…]} with names or {"name":…} objects;
 * a bare array is accepted too. */
static int print_action_names(const client_response *r) {
        json_object *list = r->result;
        size_t n;

        if (json_object_is_type(list, json_type_object) && !json_object_object_get_ex(list, "actions", &list))
                list = NULL;
        if (!json_object_is_type(list, json_type_array)) {
                fprintf(stderr, "%s: malformed response: the agent.actions result holds no list of actions\n",
                        CTL_PROGRAM);
                return EXIT_TRANSPORT;
        }

        n = json_object_array_length(list);
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(list, i);

                if (json_object_is_type(e, json_type_object) && !json_object_object_get_ex(e, "name", &e))
                        e = NULL;
                if (!json_object_is_type(e, json_type_string)) {
                        fprintf(stderr, "%s: malformed response: action %zu has no name\n", CTL_PROGRAM, i);
                        return EXIT_TRANSPORT;
                }
                put_clean(stdout, json_object_get_string(e));
                fputc('\n', stdout);
        }
        return EXIT_OK;
}

static int show(const ctl_args *a, const client_response *r) {
        bool raw = a->json || !isatty(STDOUT_FILENO);

        if (a->command == CTL_CMD_ACTIONS && !a->json) {
                if (!r->ok) {
                        print_error_response(r);
                        return EXIT_ERROR_RESPONSE;
                }
                return print_action_names(r);
        }

        if (raw)
                print_raw(r);
        else if (r->ok)
                printf("%s\n", json_object_to_json_string_ext(r->result, JSON_C_TO_STRING_PRETTY |
                                                              JSON_C_TO_STRING_SPACED |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
        else
                print_error_response(r);
        return r->ok ? EXIT_OK : EXIT_ERROR_RESPONSE;
}

/* One request; on a transport failure prints why and returns -1. */
static int call_once(const ctl_args *a, client_response *r) {
        char request_id[CTL_REQUEST_ID_MAX];
        jb_err err = JB_ERR_INIT;
        json_object *req;
        const char *text;
        size_t len;
        int ret;

        ctl_request_id(request_id, (long) getpid());
        req = ctl_request_new(a, request_id, &err);
        if (!req) {
                fprintf(stderr, "%s: %s\n", CTL_PROGRAM, err.msg);
                return EXIT_TRANSPORT;
        }
        /* The string belongs to req. */
        text = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                                 &len);
        if (!text) {
                json_object_put(req);
                fprintf(stderr, "%s: out of memory\n", CTL_PROGRAM);
                return EXIT_TRANSPORT;
        }

        ret = client_call(a->socket_path, text, len, request_id, a->timeout_ms, r, &err);
        json_object_put(req);
        if (ret < 0) {
                if (streq(err.code, "TIMEOUT") && a->timeout_ms % 1000 == 0)
                        fprintf(stderr, "%s: %s (%s, after %d s)\n", CTL_PROGRAM, err.msg,
                                a->socket_path, a->timeout_ms / 1000);
                else if (streq(err.code, "TIMEOUT"))
                        fprintf(stderr, "%s: %s (%s, after %d.%03d s)\n", CTL_PROGRAM, err.msg,
                                a->socket_path, a->timeout_ms / 1000, a->timeout_ms % 1000);
                else
                        fprintf(stderr, "%s: %s\n", CTL_PROGRAM, err.msg);
                return -1;
        }
        return 0;
}

static int run(const ctl_args *a) {
        client_response r = {};
        int ret;

        if (call_once(a, &r) < 0)
                return EXIT_TRANSPORT;
        ret = show(a, &r);
        client_response_done(&r);
        return ret;
}

/* job watch: the record again every WATCH_EVERY_MS until the job ends. On
 * a terminal the line is redrawn in place; otherwise (a log, a pipe) a
 * line is printed when it changes, without the bar. Exit 0 only for a job
 * that succeeded. */
#define WATCH_EVERY_MS 500

static int watch(const ctl_args *a) {
        const struct timespec pause = { 0, WATCH_EVERY_MS * 1000000L };
        bool tty = !a->json && isatty(STDOUT_FILENO);
        char line[512], last[512] = "";

        for (;;) {
                client_response r = {};
                json_object *job;
                bool done, ok = false;

                if (call_once(a, &r) < 0)
                        return EXIT_TRANSPORT;
                if (!r.ok) {
                        if (tty && last[0])
                                putchar('\n');
                        print_error_response(&r);
                        client_response_done(&r);
                        return EXIT_ERROR_RESPONSE;
                }
                job = json_object_object_get(r.result, "job");
                done = ctl_job_finished(job, &ok);
                if (a->json) {
                        const char *t = json_object_to_json_string_ext(job, JSON_C_TO_STRING_PLAIN);

                        snprintf(line, sizeof line, "%s", t);
                        if (strcmp(line, last) != 0)
                                printf("%s\n", t);
                } else {
                        ctl_job_line(job, tty, line, sizeof line);
                        if (tty)
                                printf("\r\033[K%s%s", line, done ? "\n" : "");
                        else if (strcmp(line, last) != 0)
                                printf("%s\n", line);
                }
                fflush(stdout);
                snprintf(last, sizeof last, "%s", line);
                client_response_done(&r);
                if (done)
                        return ok ? EXIT_OK : EXIT_ERROR_RESPONSE;
                (void) nanosleep(&pause, NULL);
        }
}

/* Output that could not be written is an error: a full disk must not pass
 * for an empty answer. */
static int finish_stdout(int ret) {
        if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "%s: cannot write to standard output: %s\n", CTL_PROGRAM, strerror(errno));
                return EXIT_TRANSPORT;
        }
        return ret;
}

int main(int argc, char *argv[]) {
        jb_err err = JB_ERR_INIT;
        ctl_args a;
        int ret;

        if (ctl_args_parse(&a, argc, argv, getenv(CTL_SOCKET_ENV), &err) < 0) {
                fprintf(stderr, "%1$s: %2$s\nTry '%1$s --help' for more information.\n", CTL_PROGRAM, err.msg);
                return EXIT_USAGE;
        }

        switch (a.mode) {
        case CTL_MODE_HELP:
                help();
                ret = EXIT_OK;
                break;
        case CTL_MODE_VERSION:
                printf("%s %s\n", CTL_PROGRAM, PACKAGE_VERSION);
                ret = EXIT_OK;
                break;
        case CTL_MODE_RUN:
        default:
                ret = a.command == CTL_CMD_JOB_WATCH ? watch(&a) : run(&a);
                break;
        }
        ctl_args_done(&a);
        return finish_stdout(ret);
}
