/* agent-ctl connect: kata-agent-ctl's command line (upstream src/tools/agent-ctl),
 *
 *   agent-ctl [-l LEVEL] connect --server-address ADDR [--bundle-dir DIR]
 *       [--timeout S] [--hybrid-vsock [--hybrid-vsock-port N]] [-n|--no-auto-values]
 *       -c 'NAME [json://{...} | file:///path.json | key=value ...]' [-c ...]
 *
 * Each -c names an RPC (CreateContainer, Check...) and is run in order on one
 * connection; each reply is printed as JSON. Without --no-auto-values, the ids a
 * request needs and does not give (container_id, sandbox_id, exec_id) are filled
 * in, the same for every command of one run, so CreateContainer then
 * StartContainer act on one container; and CreateContainer without an OCI spec
 * gets --bundle-dir's config.json, changed as the Kata runtime changes it. */
#ifndef KA_AGENT_CTL_CONNECT_H
#define KA_AGENT_CTL_CONNECT_H

#include <stdbool.h>

/* The global -l LEVEL: at debug and trace, each request is shown on stderr. */
struct ctl_global {
    bool show_requests;
};

/* argv[0] is "connect". Returns 0, or the exit status of the first command that
 * failed (1 the agent said no, 2 usage, 3 transport). */
int ctl_cmd_connect(const struct ctl_global *g, int argc, char **argv);

/* agent-ctl examples: command lines for both styles. */
int ctl_cmd_examples(void);

#define CTL_CONNECT_USAGE                                                                       \
    "  connect --server-address ADDR [--bundle-dir DIR] [--timeout S] [--hybrid-vsock\n"        \
    "      [--hybrid-vsock-port N]] [-n|--no-auto-values] -c 'NAME [ARGS]' [-c ...]\n"          \
    "                           kata-agent-ctl's style: call each RPC NAME in order on one\n"   \
    "                           connection and print each reply as JSON. ARGS: json://{...},\n" \
    "                           file:///path.json, or key=value ... (value: true/false, a\n"    \
    "                           number, else a string). Without -n, container_id,\n"            \
    "                           sandbox_id and exec_id are generated when not given (one of\n"  \
    "                           each per run), and CreateContainer gets --bundle-dir's\n"       \
    "                           config.json as its OCI spec. Builtins: echo TEXT, sleep\n"      \
    "                           DURATION (500ms, 2s), quit\n"                                   \
    "  examples                 show example command lines\n"

#endif
