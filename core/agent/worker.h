/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef JABALI_WORKER_H
#define JABALI_WORKER_H

/* The worker process's main (`jabali-agent --worker <module>`); see ipc.h. */
int worker_main(const char *module_name, char **argv);

#endif
