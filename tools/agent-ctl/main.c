/* agent-ctl: a command-line ttrpc client for the Kata agent. Any method of
 * grpc.AgentService or grpc.Health can be called with its request as JSON; the
 * reply is printed as JSON. Two command-line styles: our verbs (check, call, run,
 * exec...) and kata-agent-ctl's `connect --server-address ADDR -c NAME...`
 * (connect.c). */
#include "connect.h"
#include "core/util.h"
#include "dial.h"
#include "pbjson.h"
#include "run.h"
#include "ttrpc/client.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agent.pb-c.h"
#include "health.pb-c.h"

#define EXIT_STATUS_ERROR 1 /* the agent answered with a non-OK status */
#define EXIT_USAGE 2
#define EXIT_TRANSPORT 3 /* could not connect, or the connection broke */
#define MAX_JSON_INPUT (8u << 20)
#define REPEAT_WINDOW 256 /* calls in flight at once with --repeat */

static const ProtobufCServiceDescriptor *const services[] = {
    &grpc__agent_service__descriptor,
    &grpc__health__descriptor,
};

static void usage(FILE *out)
{
    fprintf(
        out,
        "Usage: agent-ctl [OPTIONS] COMMAND\n"
        "Commands (agent-ctl's own):\n"
        "  check                    grpc.Health/Check\n"
        "  version                  grpc.Health/Version\n"
        "  call METHOD [JSON]       call METHOD with a JSON request ({} when omitted;\n"
        "                           @FILE reads it from FILE, - from stdin). METHOD is\n"
        "                           an AgentService method (CreateContainer) or\n"
        "                           Service/Method (grpc.Health/Check)\n"
        "  list                     list every method with its request and reply types\n" CTL_RUN_USAGE
        "Commands (kata-agent-ctl's):\n" CTL_CONNECT_USAGE "Options:\n"
        "  -a, --addr ADDR          agent address (default $KATA_AGENT_ADDR): vsock://CID:PORT,\n"
        "                           unix:///path, unix://@abstract-name, or hybrid vsock\n"
        "                           hvsock:///path/to.sock:PORT (CONNECT PORT handshake)\n"
        "  -l, --log-level LEVEL    trace, debug, info, warn, error or critical; at debug\n"
        "                           and trace, connect shows each request on stderr\n"
        "  -n, --repeat N           send the call N times on one connection, up to 256\n"
        "                           in flight at once; print a summary\n"
        "  -t, --timeout SECONDS    give up waiting for a reply (default 60, 0 = never)\n"
        "  -d, --defaults           print reply fields that hold default values too\n"
        "  -c, --compact            print the reply on one line\n"
        "Exit status: 0 OK, 1 error status from the agent, 2 usage, 3 transport error;\n"
        "run and exec: the process's exit status once it has run.\n");
}

struct options {
    const char *addr;
    unsigned long repeat;
    unsigned long timeout_s;
    unsigned json_flags;
};

static const ProtobufCMethodDescriptor *find_method(const char *name,
                                                    const ProtobufCServiceDescriptor **svc)
{
    const char *slash = strrchr(name, '/');
    if (!slash) {
        for (size_t i = 0; i < KA_ARRAY_SIZE(services); i++) {
            const ProtobufCMethodDescriptor *m =
                protobuf_c_service_descriptor_get_method_by_name(services[i], name);
            if (m) {
                *svc = services[i];
                return m;
            }
        }
        return NULL;
    }
    const char *service = name[0] == '/' ? name + 1 : name;
    size_t len = (size_t)(slash - service);
    for (size_t i = 0; i < KA_ARRAY_SIZE(services); i++) {
        if (strlen(services[i]->name) == len && strncmp(services[i]->name, service, len) == 0) {
            *svc = services[i];
            return protobuf_c_service_descriptor_get_method_by_name(services[i], slash + 1);
        }
    }
    return NULL;
}

static char *read_stream(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = ka_xmalloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n > MAX_JSON_INPUT) {
            free(buf);
            return NULL;
        }
        if (n == cap)
            buf = ka_xrealloc(buf, cap *= 2);
    }
    *len = n;
    return buf;
}

/* The request text: inline JSON, @FILE, or - for stdin. */
static char *request_text(const char *arg, size_t *len)
{
    if (!arg)
        arg = "{}";
    if (strcmp(arg, "-") == 0)
        return read_stream(stdin, len);
    if (arg[0] == '@') {
        cleanup_file FILE *f = fopen(arg + 1, "r");
        if (!f) {
            fprintf(stderr, "agent-ctl: %s: %s\n", arg + 1, strerror(errno));
            return NULL;
        }
        return read_stream(f, len);
    }
    *len = strlen(arg);
    return ka_xstrdup(arg);
}

static int print_reply(const ProtobufCMethodDescriptor *m, const struct ttrpc_reply *r,
                       unsigned flags)
{
    if (r->code != 0) {
        fprintf(stderr, "agent-ctl: error: %s (%d): %s\n", ka_status_name(r->code), r->code,
                r->message);
        return EXIT_STATUS_ERROR;
    }
    ProtobufCMessage *msg = protobuf_c_message_unpack(m->output, NULL, r->payload_len, r->payload);
    if (!msg) {
        fprintf(stderr, "agent-ctl: reply is not a valid %s\n", m->output->name);
        return EXIT_TRANSPORT;
    }
    cleanup_free char *json = pbjson_from_message(msg, flags);
    protobuf_c_message_free_unpacked(msg, NULL);
    printf("%s\n", json ? json : "null");
    return 0;
}

static int connect_agent(const struct options *o, struct ttrpc_client *c)
{
    struct ka_error err;
    if (!o->addr) {
        fprintf(stderr, "agent-ctl: no address: use --addr or KATA_AGENT_ADDR\n");
        return EXIT_USAGE;
    }
    if (ctl_dial(c, o->addr, 0, o->timeout_s, &err) < 0) {
        fprintf(stderr, "agent-ctl: %s\n", err.msg);
        return EXIT_TRANSPORT;
    }
    return 0;
}

static int do_call(const struct options *o, const char *method, const char *json_arg)
{
    const ProtobufCServiceDescriptor *svc = NULL;
    const ProtobufCMethodDescriptor *m = find_method(method, &svc);
    if (!m) {
        fprintf(stderr, "agent-ctl: unknown method '%s' (try: agent-ctl list)\n", method);
        return EXIT_USAGE;
    }
    size_t len = 0;
    cleanup_free char *text = request_text(json_arg, &len);
    if (!text) {
        fprintf(stderr, "agent-ctl: cannot read the request (at most %u bytes)\n", MAX_JSON_INPUT);
        return EXIT_USAGE;
    }
    struct ka_error err;
    ProtobufCMessage *req = NULL;
    if (pbjson_to_message(m->input, text, len, &req, &err) < 0) {
        fprintf(stderr, "agent-ctl: request for %s: %s\n", m->name, err.msg);
        return EXIT_USAGE;
    }
    size_t plen = protobuf_c_message_get_packed_size(req);
    cleanup_free uint8_t *payload = ka_xmalloc(plen);
    protobuf_c_message_pack(req, payload);
    protobuf_c_message_free_unpacked(req, NULL);

    struct ttrpc_client c;
    int rc = connect_agent(o, &c);
    if (rc)
        return rc;
    int64_t timeout_nano = (int64_t)o->timeout_s * 1000000000LL;
    /* Keep at most REPEAT_WINDOW calls in flight: sending everything before reading
     * would deadlock once the server stops reading a peer that does not read. */
    unsigned long sent = 0, received = 0, ok = 0, failed = 0;
    while (received < o->repeat && rc == 0) {
        while (sent < o->repeat && sent - received < REPEAT_WINDOW) {
            if (ttrpc_client_send(&c, svc->name, m->name, payload, plen, timeout_nano, NULL, &err) <
                0) {
                rc = EXIT_TRANSPORT;
                break;
            }
            sent++;
        }
        if (rc)
            break;
        struct ttrpc_reply r;
        if (ttrpc_client_recv(&c, &r, &err) < 0) {
            rc = EXIT_TRANSPORT;
            break;
        }
        received++;
        if (o->repeat == 1)
            rc = print_reply(m, &r, o->json_flags);
        else if (r.code == 0)
            ok++;
        else
            failed++;
        ttrpc_reply_free(&r);
    }
    ttrpc_client_close(&c);
    if (rc == EXIT_TRANSPORT)
        fprintf(stderr, "agent-ctl: %s\n", err.msg);
    if (o->repeat > 1 && rc == 0) {
        printf("{\"sent\":%lu,\"ok\":%lu,\"failed\":%lu}\n", o->repeat, ok, failed);
        rc = failed ? EXIT_STATUS_ERROR : 0;
    }
    return rc;
}

static int do_list(void)
{
    for (size_t i = 0; i < KA_ARRAY_SIZE(services); i++)
        for (unsigned j = 0; j < services[i]->n_methods; j++) {
            const ProtobufCMethodDescriptor *m = &services[i]->methods[j];
            printf("%s/%s %s -> %s\n", services[i]->name, m->name, m->input->name, m->output->name);
        }
    return 0;
}

static bool parse_ulong(const char *s, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *s == '-' || *end != '\0' || errno)
        return false;
    *out = v;
    return true;
}

/* kata-agent-ctl's -l levels (slog's names). */
static bool parse_level(const char *s, bool *show_requests)
{
    static const char *const levels[] = {"trace", "debug", "info", "warn", "error", "critical"};
    for (size_t i = 0; i < KA_ARRAY_SIZE(levels); i++)
        if (strcmp(s, levels[i]) == 0) {
            *show_requests = i < 2;
            return true;
        }
    return false;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"addr", required_argument, NULL, 'a'},    {"repeat", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'}, {"defaults", no_argument, NULL, 'd'},
        {"compact", no_argument, NULL, 'c'},       {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    struct options o = {.addr = getenv("KATA_AGENT_ADDR"),
                        .repeat = 1,
                        .timeout_s = 60,
                        .json_flags = PBJSON_PRETTY};
    struct ctl_global g = {.show_requests = false};
    int opt;
    while ((opt = getopt_long(argc, argv, "+a:n:t:dcl:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'a':
            o.addr = optarg;
            break;
        case 'n':
            if (!parse_ulong(optarg, &o.repeat) || o.repeat == 0 || o.repeat > 1000000) {
                fprintf(stderr, "agent-ctl: --repeat takes 1 to 1000000\n");
                return EXIT_USAGE;
            }
            break;
        case 't':
            if (!parse_ulong(optarg, &o.timeout_s) || o.timeout_s > 86400) {
                fprintf(stderr, "agent-ctl: --timeout takes 0 to 86400 seconds\n");
                return EXIT_USAGE;
            }
            break;
        case 'd':
            o.json_flags |= PBJSON_EMIT_DEFAULTS;
            break;
        case 'c':
            o.json_flags &= ~PBJSON_PRETTY;
            break;
        case 'l':
            if (!parse_level(optarg, &g.show_requests)) {
                fprintf(stderr, "agent-ctl: --log-level takes trace, debug, info, warn, error "
                                "or critical\n");
                return EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[optind];
    int nargs = argc - optind - 1;
    if (strcmp(cmd, "check") == 0 && nargs == 0)
        return do_call(&o, "grpc.Health/Check", NULL);
    if (strcmp(cmd, "version") == 0 && nargs == 0)
        return do_call(&o, "grpc.Health/Version", NULL);
    if (strcmp(cmd, "list") == 0 && nargs == 0)
        return do_list();
    if (strcmp(cmd, "examples") == 0 && nargs == 0)
        return ctl_cmd_examples();
    if (strcmp(cmd, "connect") == 0)
        return ctl_cmd_connect(&g, argc - optind, argv + optind);
    if (strcmp(cmd, "call") == 0 && (nargs == 1 || nargs == 2))
        return do_call(&o, argv[optind + 1], nargs == 2 ? argv[optind + 2] : NULL);
    /* run and exec parse their own options (run.c). */
    struct ctl_conn_opts co = {.addr = o.addr, .timeout_s = o.timeout_s};
    if (strcmp(cmd, "run") == 0)
        return ctl_cmd_run(&co, argc - optind, argv + optind);
    if (strcmp(cmd, "exec") == 0)
        return ctl_cmd_exec(&co, argc - optind, argv + optind);
    usage(stderr);
    return EXIT_USAGE;
}
