/* SPDX-License-Identifier: GPL-3.0-or-later */
/* hello: the smallest useful jabali-agent module, built out of tree from
 * the installed SDK (libjabali-dev) alone. One action, hello.say, answers
 * with a greeting made of a setting and a validated parameter, and says
 * which worker process served it. It touches nothing on the host. */

#include <stdio.h>
#include <unistd.h>

#include <jabali/module.h>

static int say(jb_call *call) {
        json_object *result = jb_call_result(call);
        char text[128];

        /* Both parts were checked before this runs: the parameter by the
         * schema below (in the master), the setting when it was loaded. */
        snprintf(text, sizeof text, "%s, %s!", jb_setting_str(call, "greeting", "Hello"),
                 jb_param_str(call, "name", "world"));
        json_object_object_add(result, "greeting", json_object_new_string(text));
        json_object_object_add(result, "worker_pid", json_object_new_int64(getpid()));
        return 0;                       /* "changed": false */
}

static const jb_param say_params[] = {
        JB_P_STRLEN("name", JB_CHECK_TOKEN, 0, 1, 32, "who to greet; default world"),
        JB_P_END
};

static const jb_param settings[] = {
        JB_P_STRLEN("greeting", JB_CHECK_TOKEN, 0, 1, 32, "the word before the name; default Hello"),
        JB_P_END
};

static const jb_action actions[] = {
        { .name = "hello.say", .handler = say, .params = say_params,
          .summary = "greet someone", .timeout_ms = 5000 },
        { .name = NULL }
};

JABALI_MODULE(.name = "hello", .version = "1.0.0", .hat = "hello",
              .summary = "an example module built out of tree", .actions = actions,
              .settings = settings);
