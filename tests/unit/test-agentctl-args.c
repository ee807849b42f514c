/* SPDX-License-Identifier: GPL-3.0-or-later */
/* jabali-agentctl: command line → request (client/args.c), and the client's
 * round trip (client/client.c) against tiny in-test servers. */

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "args.h"
#include "client.h"
#include "frame.h"
#include "util.h"

/* ---- argument table ---------------------------------------------------- */

typedef struct args_case {
        const char *argv[12];           /* after the program name; NULL ends */
        const char *env;                /* $JABALI_AGENT_SOCKET */
        const char *error;              /* NULL: must parse; else a substring of the message */
        ctl_mode mode;
        ctl_command cmd;
        const char *action;
        const char *params;             /* compact JSON */
        const char *socket;             /* NULL: the default */
        int timeout_ms;                 /* 0: the default */
        bool json, dry_run;
} args_case;

#define OK_CALL(p, ...) { .argv = { "call", "x", __VA_ARGS__ }, .cmd = CTL_CMD_CALL, .action = "x", .params = (p) }
#define BAD(msg, ...) { .argv = { __VA_ARGS__ }, .error = (msg) }

static const args_case cases[] = {
        /* commands */
        { .argv = { "ping" }, .cmd = CTL_CMD_PING, .action = "agent.ping", .params = "{}" },
        { .argv = { "version" }, .cmd = CTL_CMD_VERSION, .action = "agent.version", .params = "{}" },
        { .argv = { "health" }, .cmd = CTL_CMD_HEALTH, .action = "agent.health", .params = "{}" },
        { .argv = { "actions" }, .cmd = CTL_CMD_ACTIONS, .action = "agent.actions", .params = "{}" },
        { .argv = { "describe" }, .cmd = CTL_CMD_DESCRIBE, .action = "agent.describe", .params = "{}" },
        { .argv = { "describe", "nginx.site_create" }, .cmd = CTL_CMD_DESCRIBE, .action = "agent.describe",
          .params = "{\"action\":\"nginx.site_create\"}" },
        { .argv = { "call", "agent.ping" }, .cmd = CTL_CMD_CALL, .action = "agent.ping", .params = "{}" },
        { .argv = { "--", "ping" }, .cmd = CTL_CMD_PING, .action = "agent.ping", .params = "{}" },

        /* options */
        { .argv = { "--help" }, .mode = CTL_MODE_HELP },
        { .argv = { "-h", "bogus", "--frob" }, .mode = CTL_MODE_HELP },
        { .argv = { "--json", "--help" }, .mode = CTL_MODE_HELP },
        { .argv = { "--version" }, .mode = CTL_MODE_VERSION },
        { .argv = { "-V" }, .mode = CTL_MODE_VERSION },
        { .argv = { "--json", "--dry-run", "ping" }, .cmd = CTL_CMD_PING, .action = "agent.ping", .params = "{}",
          .json = true, .dry_run = true },
        { .argv = { "-jn", "ping" }, .cmd = CTL_CMD_PING, .action = "agent.ping", .params = "{}",
          .json = true, .dry_run = true },
        { .argv = { "-n", "ping" }, .cmd = CTL_CMD_PING, .action = "agent.ping", .params = "{}", .dry_run = true },
        { .argv = { "--socket", "/tmp/a.sock", "ping" }, .cmd = CTL_CMD_PING, .action = "agent.ping",
          .params = "{}", .socket = "/tmp/a.sock" },
        { .argv = { "--socket=rel.sock", "ping" }, .cmd = CTL_CMD_PING, .action = "agent.ping", .params = "{}",
          .socket = "rel.sock" },
        { .argv = { "-s/x", "ping" }, .cmd = CTL_CMD_PING, .action = "agent.ping", .params = "{}", .socket = "/x" },
        { .argv = { "ping" }, .env = "/env.sock", .cmd = CTL_CMD_PING, .action = "agent.ping", .params = "{}",
          .socket = "/env.sock" },
        { .argv = { "ping" }, .env = "", .cmd = CTL_CMD_PING, .action = "agent.ping", .params = "{}" },
        { .argv = { "-s", "/opt.sock", "ping" }, .env = "/env.sock", .cmd = CTL_CMD_PING, .action = "agent.ping",
          .params = "{}", .socket = "/opt.sock" },
        { .argv = { "-s", "/a", "-s", "/b", "ping" }, .cmd = CTL_CMD_PING, .action = "agent.ping", .params = "{}",
          .socket = "/b" },
        { .argv = { "--timeout", "5", "ping" }, .cmd = CTL_CMD_PING, .action = "agent.ping", .params = "{}",
          .timeout_ms = 5000 },
        { .argv = { "--timeout=2.5", "ping" }, .cmd = CTL_CMD_PING, .action = "agent.ping", .params = "{}",
          .timeout_ms = 2500 },
        { .argv = { "-t0.001", "ping" }, .cmd = CTL_CMD_PING, .action = "agent.ping", .params = "{}",
          .timeout_ms = 1 },
        { .argv = { "-t", "0.25", "ping" }, .cmd = CTL_CMD_PING, .action = "agent.ping", .params = "{}",
          .timeout_ms = 250 },
        { .argv = { "-t", "86400", "ping" }, .cmd = CTL_CMD_PING, .action = "agent.ping", .params = "{}",
          .timeout_ms = 86400000 },
        { .argv = { "-t", "007", "ping" }, .cmd = CTL_CMD_PING, .action = "agent.ping", .params = "{}",
          .timeout_ms = 7000 },

        /* params: a whole object */
        OK_CALL("{}", "{}"),
        OK_CALL("{\"a\":[1,{\"b\":null}],\"c\":\"d\"}", "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}"),
        /* params: KEY=VALUE, auto-detected */
        OK_CALL("{\"s\":\"hello\"}", "s=hello"),
        OK_CALL("{\"n\":42}", "n=42"),
        OK_CALL("{\"n\":-7}", "n=-7"),
        OK_CALL("{\"n\":1.5}", "n=1.5"),
        OK_CALL("{\"b\":true,\"f\":false,\"z\":null}", "b=true", "f=false", "z=null"),
        OK_CALL("{\"a\":[1,\"x\"]}", "a=[1,\"x\"]"),
        OK_CALL("{\"o\":{\"k\":\"v\"}}", "o={\"k\":\"v\"}"),
        OK_CALL("{\"q\":\"quoted\"}", "q=\"quoted\""),
        OK_CALL("{\"e\":\"\"}", "e="),
        OK_CALL("{\"v\":\"b=c\"}", "v=b=c"),
        OK_CALL("{\"a:b\":\"c\"}", "a:b=c"),
        OK_CALL("{\"p\":\"08\"}", "p=08"),              /* leading zero: not JSON */
        OK_CALL("{\"p\":\" 42\"}", "p= 42"),            /* blanks: kept as text */
        OK_CALL("{\"p\":\"42 \"}", "p=42 "),
        OK_CALL("{\"p\":\"[1,2,]\"}", "p=[1,2,]"),
        OK_CALL("{\"p\":\"'x'\"}", "p='x'"),
        OK_CALL("{\"p\":\"NaN\"}", "p=NaN"),
        OK_CALL("{\"p\":\"1e400\"}", "p=1e400"),
        OK_CALL("{\"p\":\"99999999999999999999\"}", "p=99999999999999999999"),
        OK_CALL("{\"p\":\"True\"}", "p=True"),
        OK_CALL("{\"p\":\"nulls\"}", "p=nulls"),
        OK_CALL("{\"p\":\"{\\\"a\\\":1,\\\"a\\\":2}\"}", "p={\"a\":1,\"a\":2}"),
        OK_CALL("{\"p\":\"\\\"a\\\\u0000b\\\"\"}", "p=\"a\\u0000b\""),
        OK_CALL("{\"p\":\"/var/www\"}", "p=/var/www"),
        OK_CALL("{\"u\":\"h\xc3\xa9\"}", "u=h\xc3\xa9"),
        OK_CALL("{\"p\":\"-\"}", "p=-"),
        /* params: forced */
        OK_CALL("{\"s\":\"true\"}", "s==true"),
        OK_CALL("{\"s\":\"42\"}", "s==42"),
        OK_CALL("{\"s\":\"=x\"}", "s===x"),
        OK_CALL("{\"s\":\"\"}", "s=="),
        OK_CALL("{\"j\":[1,2]}", "j:=[1,2]"),
        OK_CALL("{\"j\":\"text\"}", "j:=\"text\""),
        OK_CALL("{\"j\":null}", "j:=null"),
        OK_CALL("{\"j\":null}", "j:= null "),
        OK_CALL("{\"j\":[1]}", "j:= [1] "),
        OK_CALL("{\"a\":1,\"b\":\"x\",\"c\":[true]}", "a=1", "b==x", "c:=[true]"),

        /* usage errors: commands */
        BAD("missing COMMAND", NULL),
        BAD("missing COMMAND", "--json"),
        BAD("unknown command 'bogus'", "bogus"),
        BAD("unknown command 'PING'", "PING"),
        BAD("call: missing ACTION", "call"),
        BAD("call: empty ACTION", "call", ""),
        BAD("not valid UTF-8", "call", "a\xff"),
        BAD("ping: takes no arguments", "ping", "x"),
        BAD("version: takes no arguments", "version", "x=1"),
        BAD("health: takes no arguments", "health", "x"),
        BAD("actions: takes no arguments", "actions", "x"),
        BAD("describe: takes at most one ACTION", "describe", "a", "b"),
        BAD("describe: empty ACTION", "describe", ""),
        BAD("not valid UTF-8", "describe", "\xc0\xaf"),
        BAD("options go before the command", "ping", "--json"),
        BAD("options go before the command", "call", "x", "a=1", "--dry-run"),
        BAD("options go before the command", "describe", "-h"),
        /* usage errors: options */
        BAD("unknown option '--frob'", "--frob", "ping"),
        BAD("unknown option '-x'", "-x", "ping"),
        BAD("unknown option '-?'", "-?", "ping"),
        BAD("option '--socket' needs an argument", "--socket"),
        BAD("option '-t' needs an argument", "-t"),
        BAD("--socket: empty socket path", "--socket", "", "ping"),
        BAD("--socket: empty socket path", "--socket=", "ping"),
        BAD("not a number of seconds", "--timeout", "", "ping"),
        BAD("not a number of seconds", "--timeout", "abc", "ping"),
        BAD("not a number of seconds", "--timeout", "-1", "ping"),
        BAD("not a number of seconds", "--timeout", "+1", "ping"),
        BAD("not a number of seconds", "--timeout", " 1", "ping"),
        BAD("not a number of seconds", "--timeout", "1 ", "ping"),
        BAD("not a number of seconds", "--timeout", "1.", "ping"),
        BAD("not a number of seconds", "--timeout", ".5", "ping"),
        BAD("not a number of seconds", "--timeout", "1e3", "ping"),
        BAD("not a number of seconds", "--timeout", "0x10", "ping"),
        BAD("not a number of seconds", "--timeout", "inf", "ping"),
        BAD("at most three decimals", "--timeout", "1.2345", "ping"),
        BAD("must be more than 0", "--timeout", "0", "ping"),
        BAD("must be more than 0", "--timeout", "0.000", "ping"),
        BAD("must be more than 0", "--timeout", "86400.001", "ping"),
        BAD("must be more than 0", "--timeout", "86401", "ping"),
        BAD("must be more than 0", "--timeout", "99999999999999999999999", "ping"),
        /* usage errors: params */
        BAD("expected KEY=VALUE", "call", "x", "a"),
        BAD("expected KEY=VALUE", "call", "x", "a=1", "b"),
        BAD("expected KEY=VALUE", "call", "x", "[1]"),
        BAD("expected KEY=VALUE", "call", "x", "-"),
        BAD("empty parameter name", "call", "x", "=v"),
        BAD("empty parameter name", "call", "x", ":=1"),
        BAD("empty parameter name", "call", "x", "==v"),
        BAD("parameter 'a' given more than once", "call", "x", "a=1", "a=2"),
        BAD("parameter 'a' given more than once", "call", "x", "a=1", "a:=2"),
        BAD("parameter 'a' given more than once", "call", "x", "a==x", "b=1", "a=y"),
        BAD("must be the only argument", "call", "x", "{}", "a=1"),
        BAD("must be the only argument", "call", "x", "{\"a\":1}", "{\"b\":2}"),
        BAD("params: not valid JSON", "call", "x", "{"),
        BAD("params: not valid JSON", "call", "x", "{\"a\":1,}"),
        BAD("params: not valid JSON", "call", "x", "{'a':1}"),
        BAD("params: not valid JSON", "call", "x", "{\"a\":1}x"),
        BAD("params: not valid JSON", "call", "x", "{\"a\":1}{\"b\":2}"),
        BAD("duplicate key", "call", "x", "{\"a\":1,\"a\":2}"),
        BAD("duplicate key", "call", "x", "{\"a\":1,\"\\u0061\":2}"),
        BAD("params: not valid JSON", "call", "x", "{\"a\":NaN}"),
        BAD("params: not valid JSON", "call", "x", "{\"a\":\"\x01\"}"),
        BAD("params: not valid JSON", "call", "x", "{\"a\":\"\xff\"}"),
        BAD("params: not valid JSON", "call", "x", "{\"a\":\"\\ud800\"}"),
        BAD("a: not valid JSON", "call", "x", "a:=x"),
        BAD("a: not valid JSON", "call", "x", "a:="),
        BAD("a: not valid JSON", "call", "x", "a:=[1,2,]"),
        BAD("a: not valid JSON", "call", "x", "a:=NaN"),
        BAD("a: not valid JSON", "call", "x", "a:=1e400"),
        BAD("a: not valid JSON", "call", "x", "a:=99999999999999999999"),
        BAD("a: not valid JSON", "call", "x", "a:=\"\\u0000\""),
        BAD("a: not valid JSON", "call", "x", "a:=\"x\" \"y\""),
        BAD("a: not valid JSON", "call", "x", "a:={\"k\":1,\"k\":1}"),
        BAD("a: not valid JSON", "call", "x", "a:=nul"),
        BAD("parameter name is not valid UTF-8", "call", "x", "\xff=1"),
        BAD("s: value is not valid UTF-8", "call", "x", "s=\xed\xa0\x80"),
        BAD("s: value is not valid UTF-8", "call", "x", "s==\xff"),
        BAD("s: value is not valid UTF-8", "call", "x", "s=\"\xff\""),
};

static int argv_of(const args_case *c, char *argv[static 14]) {
        int n = 0;

        argv[n++] = (char *) "jabali-agentctl";
        for (size_t i = 0; i < ELEMENTSOF(c->argv) && c->argv[i]; i++)
                argv[n++] = (char *) c->argv[i];
        argv[n] = NULL;
        return n;
}

static void test_args_table(void **state) {
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const args_case *c = &cases[i];
                char *argv[14];
                int argc = argv_of(c, argv);
                jb_err err = JB_ERR_INIT;
                ctl_args a;
                int r;

                print_message("# case %zu: %s %s %s\n", i, argc > 1 ? argv[1] : "",
                              argc > 2 ? argv[2] : "", argc > 3 ? argv[3] : "");
                r = ctl_args_parse(&a, argc, argv, c->env, &err);
                if (c->error) {
                        assert_int_equal(r, -1);
                        assert_true(jb_err_isset(&err));
                        if (!strstr(err.msg, c->error))
                                fail_msg("case %zu: message '%s' lacks '%s'", i, err.msg, c->error);
                        assert_null(a.params);
                        continue;
                }
                if (r < 0)
                        fail_msg("case %zu: unexpected error '%s'", i, err.msg);
                assert_false(jb_err_isset(&err));
                assert_int_equal(a.mode, c->mode);
                if (c->mode != CTL_MODE_RUN) {
                        assert_null(a.params);
                        continue;
                }
                assert_int_equal(a.command, c->cmd);
                assert_string_equal(a.action, c->action);
                assert_string_equal(a.socket_path, c->socket ? c->socket : CTL_DEFAULT_SOCKET);
                assert_int_equal(a.timeout_ms, c->timeout_ms ? c->timeout_ms : CTL_DEFAULT_TIMEOUT_MS);
                assert_int_equal(a.json, c->json);
                assert_int_equal(a.dry_run, c->dry_run);
                assert_non_null(a.params);
                assert_string_equal(json_object_to_json_string_ext(a.params, JSON_C_TO_STRING_PLAIN |
                                                                   JSON_C_TO_STRING_NOSLASHESCAPE),
                                    c->params);
                ctl_args_done(&a);
                ctl_args_done(&a);
                assert_null(a.params);
        }
}

static void test_args_socket_length(void **state) {
        struct sockaddr_un sa;
        char path[sizeof sa.sun_path + 1];
        char *argv[] = { (char *) "jabali-agentctl", (char *) "-s", path, (char *) "ping", NULL };
        jb_err err = JB_ERR_INIT;
        ctl_args a;

        (void) state;

        /* 107 bytes fit (sun_path keeps one for the NUL) ... */
        memset(path, 'p', sizeof sa.sun_path - 1);
        path[sizeof sa.sun_path - 1] = '\0';
        assert_int_equal(ctl_args_parse(&a, 4, argv, NULL, &err), 0);
        assert_string_equal(a.socket_path, path);
        ctl_args_done(&a);

        /* ... 108 do not, from the command line or from the environment. */
        memset(path, 'p', sizeof sa.sun_path);
        path[sizeof sa.sun_path] = '\0';
        assert_int_equal(ctl_args_parse(&a, 4, argv, NULL, &err), -1);
        assert_non_null(strstr(err.msg, "--socket: socket path longer than 107 bytes"));

        jb_err_clear(&err);
        argv[1] = (char *) "ping";
        assert_int_equal(ctl_args_parse(&a, 2, argv, path, &err), -1);
        assert_non_null(strstr(err.msg, "$JABALI_AGENT_SOCKET: socket path longer than"));
}

/* Nesting is bounded before json-c sees it: 32 levels pass, 33 do not, and a
 * hostile depth that would exhaust a recursive parser is a plain error. */
static void test_args_depth(void **state) {
        char word[4 + 2 * 20000 + 1];
        char *argv[] = { (char *) "jabali-agentctl", (char *) "call", (char *) "x", word, NULL };
        jb_err err = JB_ERR_INIT;
        ctl_args a;

        (void) state;

        for (unsigned depth = 32; depth <= 33; depth++) {
                char *p = stpcpy(word, "d:=");

                memset(p, '[', depth);
                memset(p + depth, ']', depth);
                p[2 * depth] = '\0';
                jb_err_clear(&err);
                if (depth == 32) {
                        assert_int_equal(ctl_args_parse(&a, 4, argv, NULL, &err), 0);
                        ctl_args_done(&a);
                } else {
                        assert_int_equal(ctl_args_parse(&a, 4, argv, NULL, &err), -1);
                        assert_non_null(strstr(err.msg, "nesting too deep"));
                }
        }

        /* Auto-detected: too deep for JSON, so it stays text. */
        memcpy(word, "d=", 2);
        memset(word + 2, '[', 20000);
        memset(word + 2 + 20000, ']', 20000);
        word[2 + 40000] = '\0';
        assert_int_equal(ctl_args_parse(&a, 4, argv, NULL, &err), 0);
        assert_true(json_object_is_type(json_object_object_get(a.params, "d"), json_type_string));
        ctl_args_done(&a);

        /* Forced: an error. */
        memcpy(word, "d:=", 3);
        memset(word + 3, '[', 20000);
        memset(word + 3 + 20000, ']', 20000);
        word[3 + 40000] = '\0';
        assert_int_equal(ctl_args_parse(&a, 4, argv, NULL, &err), -1);
}

static void test_request_envelope(void **state) {
        char *argv[] = { (char *) "jabali-agentctl", (char *) "-n", (char *) "call", (char *) "nginx.site_create",
                         (char *) "domain=example.com", (char *) "port=8080", NULL };
        jb_err err = JB_ERR_INIT;
        json_object *req;
        ctl_args a;

        (void) state;

        assert_int_equal(ctl_args_parse(&a, 6, argv, NULL, &err), 0);
        req = ctl_request_new(&a, "ctl-1-00", &err);
        assert_non_null(req);
        assert_string_equal(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                            "{\"action\":\"nginx.site_create\",\"params\":{\"domain\":\"example.com\",\"port\":8080},"
                            "\"request_id\":\"ctl-1-00\",\"dry_run\":true}");
        json_object_put(req);
        ctl_args_done(&a);

        argv[1] = (char *) "ping";
        assert_int_equal(ctl_args_parse(&a, 2, argv, NULL, &err), 0);
        req = ctl_request_new(&a, "r/1", &err);
        assert_non_null(req);
        assert_string_equal(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                            "{\"action\":\"agent.ping\",\"params\":{},\"request_id\":\"r/1\"}");
        json_object_put(req);
        ctl_args_done(&a);
}

static void test_request_id(void **state) {
        char a[CTL_REQUEST_ID_MAX], b[CTL_REQUEST_ID_MAX];
        const char *hex;

        (void) state;

        ctl_request_id(a, 4242);
        ctl_request_id(b, 4242);
        assert_int_equal(strncmp(a, "ctl-4242-", 9), 0);
        hex = a + 9;
        assert_int_equal(strlen(hex), 16);
        assert_int_equal(strspn(hex, "0123456789abcdef"), 16);
        assert_string_not_equal(a, b);

        /* The longest pid still fits. */
        ctl_request_id(a, 2147483647L);
        assert_int_equal(strncmp(a, "ctl-2147483647-", 15), 0);
        assert_int_equal(strlen(a), 4 + 10 + 1 + 16);
}

static void test_command_action(void **state) {
        (void) state;
        assert_string_equal(ctl_command_action(CTL_CMD_PING), "agent.ping");
        assert_string_equal(ctl_command_action(CTL_CMD_DESCRIBE), "agent.describe");
        assert_null(ctl_command_action(CTL_CMD_CALL));
        assert_null(ctl_command_action(CTL_CMD_NONE));
}

/* ---- client ------------------------------------------------------------ */

#define RID "ctl-1-0000000000000001"
#define REQ "{\"action\":\"agent.ping\",\"params\":{},\"request_id\":\"" RID "\"}"

static int64_t mono_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char tmpdir[64];

static int setup_tmpdir(void **state) {
        (void) state;
        strcpy(tmpdir, "/tmp/test-agentctl-XXXXXX");
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmpdir(void **state) {
        char path[128];

        (void) state;
        snprintf(path, sizeof path, "%s/agent.sock", tmpdir);
        (void) unlink(path);
        return rmdir(tmpdir);
}

static void sock_path(char *buf, size_t n) {
        snprintf(buf, n, "%s/agent.sock", tmpdir);
}

/* A bound, listening (or not) socket at sock_path(). */
static int make_listener(bool do_listen, int backlog) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        sock_path(sa.sun_path, sizeof sa.sun_path);
        (void) unlink(sa.sun_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        if (do_listen)
                assert_int_equal(listen(fd, backlog), 0);
        return fd;
}

static void write_bytes(int fd, const void *p, size_t n) {
        assert_int_equal(write(fd, p, n), (ssize_t) n);
}

static void write_frame(int fd, const char *payload) {
        jb_err err = JB_ERR_INIT;

        assert_int_equal(frame_write_all(fd, payload, (uint32_t) strlen(payload), &err), 0);
}

static void test_client_no_socket(void **state) {
        client_response r = {};
        jb_err err = JB_ERR_INIT;
        char path[128];

        (void) state;
        sock_path(path, sizeof path);
        (void) unlink(path);
        assert_int_equal(client_call(path, REQ, strlen(REQ), RID, 1000, &r, &err), -1);
        assert_string_equal(err.code, "INTERNAL");
        assert_non_null(strstr(err.msg, "cannot connect to "));
        assert_non_null(strstr(err.msg, path));
        assert_non_null(strstr(err.msg, strerror(ENOENT)));
        assert_null(r.root);
}

static void test_client_refused(void **state) {
        client_response r = {};
        jb_err err = JB_ERR_INIT;
        char path[128];
        int fd = make_listener(false, 0);

        (void) state;
        sock_path(path, sizeof path);
        assert_int_equal(client_call(path, REQ, strlen(REQ), RID, 1000, &r, &err), -1);
        assert_string_equal(err.code, "INTERNAL");
        assert_non_null(strstr(err.msg, strerror(ECONNREFUSED)));
        close(fd);
}

static void test_client_bad_path(void **state) {
        struct sockaddr_un sa;
        char path[sizeof sa.sun_path + 1];
        client_response r = {};
        jb_err err = JB_ERR_INIT;

        (void) state;
        memset(path, 'p', sizeof path - 1);
        path[sizeof path - 1] = '\0';
        assert_int_equal(client_call(path, REQ, strlen(REQ), RID, 1000, &r, &err), -1);
        assert_non_null(strstr(err.msg, "too long"));
        jb_err_clear(&err);
        assert_int_equal(client_call("", REQ, strlen(REQ), RID, 1000, &r, &err), -1);
        assert_string_equal(err.code, "INTERNAL");
}

/* The listener's backlog is full and nobody accepts: connect() itself must
 * give up at the deadline. */
static void test_client_connect_timeout(void **state) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        client_response r = {};
        jb_err err = JB_ERR_INIT;
        int lfd = make_listener(true, 0), filler[4];
        int64_t t0;

        (void) state;
        sock_path(sa.sun_path, sizeof sa.sun_path);
        for (size_t i = 0; i < ELEMENTSOF(filler); i++) {
                filler[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                (void) connect(filler[i], (struct sockaddr *) &sa, sizeof sa);
        }
        t0 = mono_ms();
        assert_int_equal(client_call(sa.sun_path, REQ, strlen(REQ), RID, 200, &r, &err), -1);
        assert_string_equal(err.code, "TIMEOUT");
        assert_non_null(strstr(err.msg, "timed out connecting"));
        assert_in_range(mono_ms() - t0, 150, 1500);
        for (size_t i = 0; i < ELEMENTSOF(filler); i++)
                close(filler[i]);
        close(lfd);
}

/* Reads exactly n bytes or fails the child. */
static void child_read(int fd, void *buf, size_t n) {
        uint8_t *p = buf;

        while (n > 0) {
                ssize_t k = read(fd, p, n);

                if (k <= 0)
                        _exit(10);
                p += k;
                n -= (size_t) k;
        }
}

/* A forked server: accepts one connection, checks that the request frame is
 * exactly REQ, answers with `response` split into `chunk`-byte writes
 * `delay_ms` apart, then exits 0. */
static pid_t spawn_server(int lfd, const char *response, size_t chunk, int delay_ms) {
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                uint8_t header[FRAME_HEADER_SIZE], out[FRAME_HEADER_SIZE];
                char buf[sizeof REQ];
                size_t len = strlen(response), off = 0;
                int c = accept(lfd, NULL, NULL);

                if (c < 0)
                        _exit(11);
                child_read(c, header, sizeof header);
                frame_put_header(out, (uint32_t) strlen(REQ));
                if (memcmp(header, out, sizeof out) != 0)
                        _exit(12);
                child_read(c, buf, strlen(REQ));
                if (memcmp(buf, REQ, strlen(REQ)) != 0)
                        _exit(13);
                frame_put_header(out, (uint32_t) len);
                if (send(c, out, sizeof out, MSG_NOSIGNAL) != (ssize_t) sizeof out)
                        _exit(14);
                while (off < len) {
                        size_t n = len - off < chunk ? len - off : chunk;
                        struct timespec ts = { .tv_nsec = (long) delay_ms * 1000000L };

                        if (delay_ms > 0)
                                nanosleep(&ts, NULL);
                        if (send(c, response + off, n, MSG_NOSIGNAL) != (ssize_t) n)
                                _exit(0);       /* the client gave up: fine */
                        off += n;
                }
                close(c);
                _exit(0);
        }
        return pid;
}

static int reap(pid_t pid) {
        int status;

        assert_int_equal(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

static void test_client_round_trip(void **state) {
        static const char resp[] = "{\"request_id\":\"" RID "\",\"ok\":true,\"result\":{\"pong\":true,\"p\":\"/a\"}}";
        client_response r = {};
        jb_err err = JB_ERR_INIT;
        char path[128];
        int lfd = make_listener(true, 4);
        pid_t pid;

        (void) state;
        sock_path(path, sizeof path);
        pid = spawn_server(lfd, resp, 7, 0);
        assert_int_equal(client_call(path, REQ, strlen(REQ), RID, 5000, &r, &err), 0);
        assert_int_equal(reap(pid), 0);
        assert_true(r.ok);
        assert_int_equal(r.raw_len, strlen(resp));
        assert_string_equal(r.raw, resp);
        assert_true(json_object_get_boolean(json_object_object_get(r.result, "pong")));
        assert_null(r.code);
        client_response_done(&r);
        client_response_done(&r);
        close(lfd);
}

/* A response much larger than one read, in many writes. */
static void test_client_large_response(void **state) {
        size_t n = 3 * 1024 * 1024;
        _cleanup_free_ char *resp = malloc(n + 128);
        client_response r = {};
        jb_err err = JB_ERR_INIT;
        char path[128];
        int lfd = make_listener(true, 4);
        pid_t pid;
        int k;

        (void) state;
        assert_non_null(resp);
        k = sprintf(resp, "{\"request_id\":\"%s\",\"ok\":true,\"result\":{\"blob\":\"", RID);
        memset(resp + k, 'x', n);
        strcpy(resp + k + n, "\"}}");
        sock_path(path, sizeof path);
        pid = spawn_server(lfd, resp, 100000, 0);
        assert_int_equal(client_call(path, REQ, strlen(REQ), RID, 10000, &r, &err), 0);
        assert_int_equal(reap(pid), 0);
        assert_int_equal(json_object_get_string_len(json_object_object_get(r.result, "blob")), (int) n);
        client_response_done(&r);
        close(lfd);
}

/* A peer sending a byte every 50 ms must not keep the client past its
 * deadline: the deadline covers the whole exchange, not each read. */
static void test_client_trickle_timeout(void **state) {
        static const char resp[] = "{\"request_id\":\"" RID "\",\"ok\":true,\"result\":{\"padding\":\"................\"}}";
        client_response r = {};
        jb_err err = JB_ERR_INIT;
        char path[128];
        int lfd = make_listener(true, 4);
        int64_t t0;
        pid_t pid;

        (void) state;
        sock_path(path, sizeof path);
        pid = spawn_server(lfd, resp, 1, 50);
        t0 = mono_ms();
        assert_int_equal(client_call(path, REQ, strlen(REQ), RID, 300, &r, &err), -1);
        assert_in_range(mono_ms() - t0, 250, 1500);
        assert_string_equal(err.code, "TIMEOUT");
        assert_non_null(strstr(err.msg, "timed out waiting for the response"));
        assert_int_equal(reap(pid), 0);
        close(lfd);
}

/* Socketpair cases: the "server" end is written before the exchange. */
static void pair(int sv[2]) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* Checks that sv[1] received exactly one frame holding REQ. */
static void assert_request_received(int fd) {
        jb_err err = JB_ERR_INIT;
        char *buf = NULL;
        uint32_t len = 0;

        assert_int_equal(frame_read(fd, 1 << 20, &buf, &len, &err), 1);
        assert_int_equal(len, strlen(REQ));
        assert_memory_equal(buf, REQ, len);
        free(buf);
}

static void test_client_exchange_ok(void **state) {
        client_response r = {};
        jb_err err = JB_ERR_INIT;
        int sv[2];

        (void) state;
        pair(sv);
        /* Any member order, extra members and a null result are accepted. */
        write_frame(sv[1], "{\"ok\":true,\"result\":null,\"extra\":[1],\"request_id\":\"" RID "\"}");
        assert_int_equal(client_exchange(sv[0], REQ, strlen(REQ), RID, 2000, &r, &err), 0);
        assert_true(r.ok);
        assert_null(r.result);
        assert_request_received(sv[1]);
        assert_true(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
        client_response_done(&r);
        close(sv[0]);
        close(sv[1]);
}

static void test_client_exchange_error_response(void **state) {
        static const char *const payloads[] = {
                "{\"request_id\":\"" RID "\",\"ok\":false,\"error\":\"domain: bad\",\"code\":\"INVALID_PARAMS\"}",
                /* the agent could not read our request_id: null or absent */
                "{\"request_id\":null,\"ok\":false,\"error\":\"domain: bad\",\"code\":\"INVALID_PARAMS\"}",
                "{\"ok\":false,\"error\":\"domain: bad\",\"code\":\"INVALID_PARAMS\"}",
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(payloads); i++) {
                client_response r = {};
                jb_err err = JB_ERR_INIT;
                int sv[2];

                pair(sv);
                write_frame(sv[1], payloads[i]);
                assert_int_equal(client_exchange(sv[0], REQ, strlen(REQ), RID, 2000, &r, &err), 0);
                assert_false(r.ok);
                assert_string_equal(r.code, "INVALID_PARAMS");
                assert_string_equal(r.message, "domain: bad");
                assert_null(r.result);
                client_response_done(&r);
                close(sv[0]);
                close(sv[1]);
        }
}

typedef struct garbage {
        const char *bytes;              /* written raw to the server end */
        size_t len;                     /* 0: strlen(bytes) */
        bool framed;                    /* wrap bytes in a frame */
        const char *code;
        const char *msg;                /* substring */
} garbage;

#define RAW(b, c, m) { .bytes = (b), .len = sizeof(b) - 1, .code = (c), .msg = (m) }
#define FRAMED(b, m) { .bytes = (b), .framed = true, .code = "INVALID_JSON", .msg = (m) }

static const garbage garbages[] = {
        RAW("", "INVALID_FRAME", "closed without a response"),
        RAW("\0\0", "INVALID_FRAME", "closed inside the response frame"),
        RAW("\0\0\0\x10{\"ok\":", "INVALID_FRAME", "closed inside the response frame"),
        RAW("\0\0\0\0", "INVALID_FRAME", "empty"),
        RAW("{\"id\":\"x\",\"ok\":true}\n", "INVALID_FRAME", "v1 dialect"),
        RAW("\x7f\xff\xff\xff", "FRAME_TOO_LARGE", "larger than"),
        RAW("\x04\x10\0\x01", "FRAME_TOO_LARGE", "larger than"),
        FRAMED("hello", "malformed response"),
        FRAMED("null", "malformed response"),
        FRAMED("[1]", "not a JSON object"),
        FRAMED("\"ok\"", "not a JSON object"),
        FRAMED("{\"ok\":true", "malformed response"),
        FRAMED("{\"request_id\":\"" RID "\",\"ok\":true,\"result\":{}} x", "malformed response"),
        FRAMED("{\"request_id\":\"" RID "\",\"ok\":true,\"result\":{}}{}", "malformed response"),
        FRAMED("{'request_id':'" RID "','ok':true,'result':{}}", "malformed response"),
        FRAMED("{\"request_id\":\"" RID "\",\"ok\":true,\"result\":NaN}", "malformed response"),
        FRAMED("{\"request_id\":\"" RID "\",\"ok\":true,\"result\":\"\x1b\"}", "malformed response"),
        FRAMED("{\"request_id\":\"" RID "\",\"ok\":true,\"result\":\"\xff\"}", "malformed response"),
        FRAMED("{\"request_id\":\"" RID "\",\"ok\":true,\"ok\":false,\"result\":{}}", "duplicate key"),
        FRAMED("{\"request_id\":\"" RID "\",\"result\":{}}", "\"ok\" missing"),
        FRAMED("{\"request_id\":\"" RID "\",\"ok\":\"true\",\"result\":{}}", "\"ok\" missing or not a boolean"),
        FRAMED("{\"request_id\":\"" RID "\",\"ok\":1,\"result\":{}}", "\"ok\" missing or not a boolean"),
        FRAMED("{\"request_id\":\"ctl-1-other\",\"ok\":true,\"result\":{}}", "does not match"),
        FRAMED("{\"request_id\":\"ctl-1-other\",\"ok\":false,\"error\":\"x\",\"code\":\"BUSY\"}", "does not match"),
        FRAMED("{\"request_id\":7,\"ok\":true,\"result\":{}}", "not a string"),
        FRAMED("{\"ok\":true,\"result\":{}}", "\"request_id\" missing"),
        FRAMED("{\"request_id\":null,\"ok\":true,\"result\":{}}", "\"request_id\" missing"),
        FRAMED("{\"request_id\":\"" RID "\",\"ok\":true}", "\"result\" missing"),
        FRAMED("{\"request_id\":\"" RID "\",\"ok\":false,\"error\":\"x\"}", "\"code\""),
        FRAMED("{\"request_id\":\"" RID "\",\"ok\":false,\"error\":\"x\",\"code\":5}", "\"code\""),
        FRAMED("{\"request_id\":\"" RID "\",\"ok\":false,\"error\":\"x\",\"code\":\"bad code\"}", "\"code\""),
        FRAMED("{\"request_id\":\"" RID "\",\"ok\":false,\"error\":\"x\",\"code\":\"\"}", "\"code\""),
        FRAMED("{\"request_id\":\"" RID "\",\"ok\":false,\"error\":\"x\","
               "\"code\":\"A234567890123456789012345678901234\"}", "\"code\""),
        FRAMED("{\"request_id\":\"" RID "\",\"ok\":false,\"code\":\"BUSY\"}", "\"error\" missing"),
        FRAMED("{\"request_id\":\"" RID "\",\"ok\":false,\"code\":\"BUSY\",\"error\":null}", "\"error\" missing"),
};

static void test_client_garbage(void **state) {
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(garbages); i++) {
                const garbage *g = &garbages[i];
                client_response r = {};
                jb_err err = JB_ERR_INIT;
                int sv[2];

                print_message("# garbage %zu\n", i);
                pair(sv);
                if (g->framed)
                        write_frame(sv[1], g->bytes);
                else if (g->len > 0)
                        write_bytes(sv[1], g->bytes, g->len);
                /* Half-close: the client's request still reaches us, and it
                 * sees EOF after the garbage instead of waiting. */
                assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
                assert_int_equal(client_exchange(sv[0], REQ, strlen(REQ), RID, 2000, &r, &err), -1);
                if (!streq(err.code, g->code) || !strstr(err.msg, g->msg))
                        fail_msg("garbage %zu: got %s '%s', want %s '%s'", i, err.code, err.msg, g->code, g->msg);
                assert_null(r.root);
                assert_null(r.raw);
                close(sv[0]);
                close(sv[1]);
        }
}

static void test_client_wait_timeout(void **state) {
        client_response r = {};
        jb_err err = JB_ERR_INIT;
        int64_t t0;
        int sv[2];

        (void) state;
        pair(sv);
        t0 = mono_ms();
        assert_int_equal(client_exchange(sv[0], REQ, strlen(REQ), RID, 150, &r, &err), -1);
        assert_in_range(mono_ms() - t0, 140, 1500);
        assert_string_equal(err.code, "TIMEOUT");
        /* The request went out before the wait. */
        assert_request_received(sv[1]);
        close(sv[0]);
        close(sv[1]);
}

/* A peer that answers and hangs up without reading (a refused, oversized
 * request, say): its answer wins over the failed send. */
static void test_client_answer_before_read(void **state) {
        size_t big = 4 * 1024 * 1024;
        _cleanup_free_ char *req = malloc(big);
        client_response r = {};
        jb_err err = JB_ERR_INIT;
        int sv[2];

        (void) state;
        assert_non_null(req);
        memset(req, ' ', big);
        pair(sv);
        write_frame(sv[1], "{\"request_id\":null,\"ok\":false,\"error\":\"too big\",\"code\":\"FRAME_TOO_LARGE\"}");
        close(sv[1]);
        assert_int_equal(client_exchange(sv[0], req, big, RID, 2000, &r, &err), 0);
        assert_false(r.ok);
        assert_string_equal(r.code, "FRAME_TOO_LARGE");
        client_response_done(&r);
        close(sv[0]);

        /* Without an answer, the send error is what is reported. */
        pair(sv);
        close(sv[1]);
        jb_err_clear(&err);
        assert_int_equal(client_exchange(sv[0], req, big, RID, 2000, &r, &err), -1);
        assert_non_null(strstr(err.msg, "cannot send the request"));
        close(sv[0]);
}

static void test_client_bad_request_len(void **state) {
        client_response r = {};
        jb_err err = JB_ERR_INIT;
        int sv[2];

        (void) state;
        pair(sv);
        assert_int_equal(client_exchange(sv[0], "", 0, RID, 100, &r, &err), -1);
        assert_string_equal(err.code, "INTERNAL");
        close(sv[0]);
        close(sv[1]);
}

static void test_parse_response_direct(void **state) {
        static const char ok[] = "{\"request_id\":\"r\",\"ok\":true,\"result\":{\"a\":1}}";
        client_response r = {};
        jb_err err = JB_ERR_INIT;

        (void) state;
        /* Not NUL-terminated at len: only len bytes are read. */
        assert_int_equal(client_parse_response(ok, strlen(ok), "r", &r, &err), 0);
        assert_int_equal(r.raw[r.raw_len], '\0');
        client_response_done(&r);
        assert_int_equal(client_parse_response(ok, strlen(ok) - 1, "r", &r, &err), -1);
        assert_string_equal(err.code, "INVALID_JSON");
        jb_err_clear(&err);
        assert_int_equal(client_parse_response(ok, 0, "r", &r, &err), -1);
        assert_string_equal(err.code, "INVALID_JSON");
        /* Depth beyond CLIENT_RESPONSE_MAX_DEPTH. */
        {
                char deep[64 + 2 * (CLIENT_RESPONSE_MAX_DEPTH + 6)];
                char *p = stpcpy(deep, "{\"request_id\":\"r\",\"ok\":true,\"result\":");
                size_t d = CLIENT_RESPONSE_MAX_DEPTH;   /* plus the envelope: one too many */

                memset(p, '[', d);
                memset(p + d, ']', d);
                strcpy(p + 2 * d, "}");
                jb_err_clear(&err);
                assert_int_equal(client_parse_response(deep, strlen(deep), "r", &r, &err), -1);
                assert_non_null(strstr(err.msg, "nesting too deep"));
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_args_table),
                cmocka_unit_test(test_args_socket_length),
                cmocka_unit_test(test_args_depth),
                cmocka_unit_test(test_request_envelope),
                cmocka_unit_test(test_request_id),
                cmocka_unit_test(test_command_action),
                cmocka_unit_test(test_client_no_socket),
                cmocka_unit_test(test_client_refused),
                cmocka_unit_test(test_client_bad_path),
                cmocka_unit_test(test_client_connect_timeout),
                cmocka_unit_test(test_client_round_trip),
                cmocka_unit_test(test_client_large_response),
                cmocka_unit_test(test_client_trickle_timeout),
                cmocka_unit_test(test_client_exchange_ok),
                cmocka_unit_test(test_client_exchange_error_response),
                cmocka_unit_test(test_client_garbage),
                cmocka_unit_test(test_client_wait_timeout),
                cmocka_unit_test(test_client_answer_before_read),
                cmocka_unit_test(test_client_bad_request_len),
                cmocka_unit_test(test_parse_response_direct),
        };

        /* SIGPIPE is left at its default: the client must not raise it. */
        return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
