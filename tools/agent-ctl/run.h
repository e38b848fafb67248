/* agent-ctl run / exec: start a container from an OCI bundle, or a process in a
 * running container, and drive its stdio over one ttrpc connection as the Kata
 * shim does (AGENT-PROTOCOL.md §3.6, §3.7, §3.9). */
#ifndef KA_AGENT_CTL_RUN_H
#define KA_AGENT_CTL_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "ttrpc/client.h"

/* The same exit statuses as the rest of agent-ctl (main.c). */
#define CTL_EXIT_STATUS_ERROR 1 /* the agent answered with a non-OK status */
#define CTL_EXIT_USAGE 2
#define CTL_EXIT_TRANSPORT 3 /* could not connect, or the connection broke */

/* The global options run and exec use. */
struct ctl_conn_opts {
    const char *addr;        /* any form dial.h takes */
    unsigned long timeout_s; /* for every call but the long polls and WaitProcess; 0 = none */
};

/* argv[0] is the command name ("run", "exec"); the rest are its own options and
 * operands. Return the process's exit status (0-255) or a CTL_EXIT_* code. */
/* len bytes from getrandom (time and pid mixed when it is unavailable): ids only. */
void ctl_random_bytes(uint8_t *b, size_t len);
int ctl_cmd_run(const struct ctl_conn_opts *o, int argc, char **argv);
int ctl_cmd_exec(const struct ctl_conn_opts *o, int argc, char **argv);

/* Usage lines for main.c's help. */
#define CTL_RUN_USAGE                                                                        \
    "  run [--sandbox] [-t] [-i] [--guest-rootfs PATH] [--keep|-d] [--storage JSON]...\n"    \
    "      [--device JSON]... BUNDLE CID\n"                                                  \
    "                           create and start container CID from the OCI bundle BUNDLE\n" \
    "                           (BUNDLE/config.json, changed as the Kata runtime does),\n"   \
    "                           stream its stdio, wait, remove it; exit with its status.\n"  \
    "                           --sandbox: CreateSandbox first (hostname CID); -t: a tty;\n" \
    "                           -i: forward stdin (else the process gets EOF at once);\n"    \
    "                           --guest-rootfs: the rootfs path as the agent sees it\n"      \
    "                           (default: BUNDLE's root.path made absolute); --keep: do\n"   \
    "                           not RemoveContainer; -d/--detach: return once it started\n"  \
    "                           (no stdio, not removed); --storage/--device: a Storage or\n" \
    "                           Device message (JSON) added to CreateContainer (up to 16)\n" \
    "  exec [-t] [-i] [-u UID[:GID]] [-w DIR] [-e K=V]... CID -- ARGS...\n"                  \
    "                           run ARGS in container CID (ExecProcess with a fresh exec\n"  \
    "                           id) and stream its stdio; exit with its status. Default\n"   \
    "                           user 0:0, cwd /, PATH=/usr/local/sbin:/usr/local/bin:\n"     \
    "                           /usr/sbin:/usr/bin:/sbin:/bin (and TERM=xterm with -t)\n"

#endif
