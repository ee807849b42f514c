/* SPDX-License-Identifier: GPL-3.0-or-later */
/* jabali-agent: command line, then the master or a worker. No logic here. */

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jabali/abi.h>

#include "log.h"
#include "server.h"
#include "util.h"
#include "worker.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/jabali/jabali-agent.conf"

static void usage(FILE *f) {
        fprintf(f,
                "Usage: jabali-agent [OPTION]...\n"
                "The privileged host agent of the jabali hosting panel.\n\n"
                "  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
                "  -f, --foreground    log to standard error even when the journal is there\n"
                "  -t, --check-config  check the configuration and the modules it enables, then exit\n"
                "  -V, --version       print the version and module ABI, then exit\n"
                "  -h, --help          print this help, then exit\n\n"
                "Drop-ins are read from agent.d/*.conf beside the configuration file.\n"
                "See jabali-agent(8) and jabali-agent.conf(5).\n");
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "foreground", no_argument, NULL, 'f' },
                { "check-config", no_argument, NULL, 't' },
                { "version", no_argument, NULL, 'V' },
                { "help", no_argument, NULL, 'h' },
                { "worker", required_argument, NULL, 'W' },
                {}
        };
        const char *config = DEFAULT_CONFIG, *worker = NULL;
        bool check = false, foreground = false;
        int c;

        while ((c = getopt_long(argc, argv, "c:ftVh", opts, NULL)) >= 0) {
                switch (c) {
                case 'c': config = optarg; break;
                case 'f': foreground = true; break;
                case 't': check = true; break;
                case 'W': worker = optarg; break;
                case 'V':
                        printf("jabali-agent %s (module ABI %d)\n", JABALI_VERSION, JABALI_MODULE_ABI);
                        return 0;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "jabali-agent: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        log_setup("jabali-agent");
        if (foreground || check)
                log_set_target_stderr(true);
        if (worker)
                return worker_main(worker, argv);
        if (check)
                return server_check_config(config);
        return server_run(config);
}
