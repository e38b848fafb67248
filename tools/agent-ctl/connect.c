/* agent-ctl connect: see connect.h. */
#include "connect.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.pb-c.h"
#include "core/util.h"
#include "dial.h"
#include "health.pb-c.h"
#include "json.h"
#include "oci.h"
#include "pbjson.h"
#include "run.h"

/* As `call @FILE`: requests are capped at 4 MiB on the wire. */
#define MAX_REQUEST_FILE (8u << 20)
/* A -c with more key=value words than this is a mistake. */
#define MAX_WORDS 64

struct connect_opts {
    const char *addr;
    const char *bundle_dir;
    unsigned long timeout_s;
    uint32_t hybrid_vsock_port; /* 0 = not hybrid vsock */
    bool auto_values;
    bool show_requests;
    /* Generated once per run, so a sequence of commands acts on one object. */
    char container_id[33], sandbox_id[33], exec_id[33];
};

static const ProtobufCServiceDescriptor *const services[] = {
    &grpc__agent_service__descriptor,
    &grpc__health__descriptor,
};

static const ProtobufCMethodDescriptor *find_rpc(const char *name,
                                                 const ProtobufCServiceDescriptor **svc)
{
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

/* 32 hex digits, as kata-agent-ctl generates container and sandbox ids. */
static void random_id(char out[33])
{
    uint8_t b[16];
    ctl_random_bytes(b, sizeof(b));
    for (size_t i = 0; i < sizeof(b); i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* Split s into words at blanks; "..." and '...' group (and are removed), as in
 * kata-agent-ctl's `baz="hello world"`. Returns the count, or -1. */
static int split_words(char *s, char **words, int max)
{
    int n = 0;
    char *out = s;
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s)
            break;
        if (n == max)
            return -1;
        words[n++] = out;
        char quote = 0;
        for (; *s && (quote || (*s != ' ' && *s != '\t')); s++) {
            if (!quote && (*s == '"' || *s == '\''))
                quote = *s;
            else if (quote && *s == quote)
                quote = 0;
            else
                *out++ = *s;
        }
        if (quote)
            return -1;
        if (*s)
            s++;
        *out++ = '\0';
    }
    return n;
}

static char *read_file_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "agent-ctl: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = ka_xmalloc(MAX_REQUEST_FILE + 1);
    *len = fread(buf, 1, MAX_REQUEST_FILE + 1, f);
    fclose(f);
    if (*len > MAX_REQUEST_FILE) {
        fprintf(stderr, "agent-ctl: %s: larger than %u bytes\n", path, MAX_REQUEST_FILE);
        free(buf);
        return NULL;
    }
    return buf;
}

/* A key=value's value: true/false, a JSON number, else the text as a string. */
static struct json_object *word_value(const char *text)
{
    if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)
        return ctl_json_ok(json_object_new_boolean(text[0] == 't'));
    struct ka_error ignored;
    struct json_object *num = NULL;
    bool plain = text[0] == '-' || (text[0] >= '0' && text[0] <= '9');
    if (plain && ctl_json_parse(text, strlen(text), &num, &ignored) == 0 &&
        (json_object_is_type(num, json_type_int) || json_object_is_type(num, json_type_double)))
        return num;
    json_object_put(num);
    return ctl_json_string(text, strlen(text));
}

/* The request of one -c as a JSON object (never NULL on success). */
static int request_json(char *rest, struct json_object **out)
{
    *out = NULL;
    struct ka_error err;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (strncmp(rest, "json://", 7) == 0 || strncmp(rest, "file://", 7) == 0) {
        cleanup_free char *file_text = NULL;
        const char *text = rest + 7;
        size_t len = strlen(text);
        if (rest[0] == 'f' && !(text = file_text = read_file_text(rest + 7, &len)))
            return CTL_EXIT_USAGE;
        if (ctl_json_parse(text, len, out, &err) < 0) {
            fprintf(stderr, "agent-ctl: %s: %s\n", rest[0] == 'f' ? rest + 7 : "json://", err.msg);
            return CTL_EXIT_USAGE;
        }
        if (!json_object_is_type(*out, json_type_object)) {
            fprintf(stderr, "agent-ctl: the request must be a JSON object\n");
            json_object_put(*out);
            *out = NULL;
            return CTL_EXIT_USAGE;
        }
        return 0;
    }
    char *words[MAX_WORDS];
    int n = split_words(rest, words, MAX_WORDS);
    if (n < 0) {
        fprintf(stderr, "agent-ctl: unbalanced quote or more than %d words\n", MAX_WORDS);
        return CTL_EXIT_USAGE;
    }
    *out = ctl_json_ok(json_object_new_object());
    for (int i = 0; i < n; i++) {
        char *eq = strchr(words[i], '=');
        if (!eq || eq == words[i]) {
            fprintf(stderr, "agent-ctl: '%s' is not json://, file:// or key=value\n", words[i]);
            json_object_put(*out);
            *out = NULL;
            return CTL_EXIT_USAGE;
        }
        *eq = '\0';
        json_object_object_add(*out, words[i], word_value(eq + 1));
    }
    return 0;
}

/* Whether field f is given in the request, by its proto or its JSON name. */
static bool has_member(struct json_object *req, const char *proto_name, const char *json_name)
{
    return json_object_object_get_ex(req, proto_name, NULL) ||
           json_object_object_get_ex(req, json_name, NULL);
}

/* Fill the ids a request has and was not given. */
static void add_auto_ids(const ProtobufCMessageDescriptor *desc, struct json_object *req,
                         const struct connect_opts *o)
{
    static const struct {
        const char *proto, *json;
        size_t offset;
    } ids[] = {
        {"container_id", "containerId", offsetof(struct connect_opts, container_id)},
        {"sandbox_id", "sandboxId", offsetof(struct connect_opts, sandbox_id)},
        {"exec_id", "execId", offsetof(struct connect_opts, exec_id)},
    };
    for (size_t i = 0; i < KA_ARRAY_SIZE(ids); i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(desc, ids[i].proto);
        if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED ||
            has_member(req, ids[i].proto, ids[i].json))
            continue;
        const char *id = (const char *)o + ids[i].offset;
        json_object_object_add(req, ids[i].proto, ctl_json_string(id, strlen(id)));
    }
}

/* CreateContainer without an OCI spec: the bundle's, as the runtime sends it. */
static int add_bundle_spec(Grpc__CreateContainerRequest *req, const struct connect_opts *o)
{
    if (req->oci || !o->bundle_dir)
        return 0;
    struct ka_error err;
    bool sandbox_pidns = false;
    if (oci_bundle_to_spec(o->bundle_dir, NULL, &req->oci, &sandbox_pidns, &err) < 0) {
        fprintf(stderr, "agent-ctl: bundle %s: %s\n", o->bundle_dir, err.msg);
        return CTL_EXIT_USAGE;
    }
    req->sandbox_pidns = sandbox_pidns;
    return 0;
}

/* Build the request message of one -c. */
static int build_request(const ProtobufCMethodDescriptor *m, char *rest,
                         const struct connect_opts *o, ProtobufCMessage **out)
{
    cleanup_json struct json_object *req = NULL;
    int rc = request_json(rest, &req);
    if (rc)
        return rc;
    if (o->auto_values)
        add_auto_ids(m->input, req, o);
    cleanup_free char *text = ctl_json_write(req, false);
    struct ka_error err;
    if (pbjson_to_message(m->input, text, strlen(text), out, &err) < 0) {
        fprintf(stderr, "agent-ctl: request for %s: %s\n", m->name, err.msg);
        return CTL_EXIT_USAGE;
    }
    if (o->auto_values && m->input == &grpc__create_container_request__descriptor &&
        (rc = add_bundle_spec((Grpc__CreateContainerRequest *)*out, o)) != 0) {
        protobuf_c_message_free_unpacked(*out, NULL);
        *out = NULL;
    }
    return rc;
}

/* kata-agent-ctl's builtin sleep: NUMBER with ns, us, ms, s, m or h (s when none). */
static int builtin_sleep(const char *arg)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6},  {"s", 1e9},
                 {"", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    for (size_t i = 0; !errno && v >= 0 && end != arg && i < KA_ARRAY_SIZE(units); i++) {
        if (strcmp(end, units[i].unit) != 0)
            continue;
        double ns = v * units[i].ns;
        if (ns > 86400e9)
            break;
        uint64_t total = (uint64_t)ns;
        struct timespec ts = {.tv_sec = (time_t)(total / 1000000000u),
                              .tv_nsec = (long)(total % 1000000000u)};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        return 0;
    }
    fprintf(stderr, "agent-ctl: sleep takes a duration up to a day: 500ms, 2s, 1m\n");
    return CTL_EXIT_USAGE;
}

/* Builtins (kata-agent-ctl's): echo TEXT, sleep DURATION, quit (skip the rest).
 * Returns 1 when name is not one, else 0 with *rc set (-1 for quit). */
static int run_builtin(const char *name, const char *rest, int *rc)
{
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (strcmp(name, "echo") == 0) {
        printf("%s\n", rest);
        fflush(stdout);
        *rc = 0;
    } else if (strcmp(name, "sleep") == 0) {
        *rc = builtin_sleep(rest);
    } else if (strcmp(name, "quit") == 0) {
        *rc = -1;
    } else {
        return 1;
    }
    return 0;
}

/* Run one -c on the connection; -1 when it was quit. */
static int run_command(struct ttrpc_client *c, const char *command, const struct connect_opts *o)
{
    cleanup_free char *copy = ka_xstrdup(command);
    char *name = copy;
    while (*name == ' ' || *name == '\t')
        name++;
    char *rest = name + strcspn(name, " \t");
    if (*rest)
        *rest++ = '\0';
    int rc;
    if (run_builtin(name, rest, &rc) == 0)
        return rc;
    const ProtobufCServiceDescriptor *svc = NULL;
    const ProtobufCMethodDescriptor *m = find_rpc(name, &svc);
    if (!m) {
        fprintf(stderr, "agent-ctl: unknown command '%s' (agent-ctl list shows the RPCs)\n", name);
        return CTL_EXIT_USAGE;
    }
    ProtobufCMessage *req = NULL;
    rc = build_request(m, rest, o, &req);
    if (rc)
        return rc;
    if (o->show_requests) {
        cleanup_free char *shown = pbjson_from_message(req, 0);
        fprintf(stderr, "agent-ctl: %s/%s %s\n", svc->name, m->name, shown ? shown : "");
    }
    size_t plen = protobuf_c_message_get_packed_size(req);
    cleanup_free uint8_t *payload = ka_xmalloc(plen ? plen : 1);
    protobuf_c_message_pack(req, payload);
    protobuf_c_message_free_unpacked(req, NULL);

    struct ka_error err;
    struct ttrpc_reply r;
    int64_t timeout_nano = (int64_t)o->timeout_s * 1000000000LL;
    if (ttrpc_client_send(c, svc->name, m->name, payload, plen, timeout_nano, NULL, &err) < 0 ||
        ttrpc_client_recv(c, &r, &err) < 0) {
        fprintf(stderr, "agent-ctl: %s: %s\n", m->name, err.msg);
        return CTL_EXIT_TRANSPORT;
    }
    if (r.code != 0) {
        fprintf(stderr, "agent-ctl: %s: error: %s (%d): %s\n", m->name, ka_status_name(r.code),
                r.code, r.message);
        ttrpc_reply_free(&r);
        return CTL_EXIT_STATUS_ERROR;
    }
    ProtobufCMessage *reply = protobuf_c_message_unpack(m->output, NULL, r.payload_len, r.payload);
    ttrpc_reply_free(&r);
    if (!reply) {
        fprintf(stderr, "agent-ctl: %s: reply is not a valid %s\n", m->name, m->output->name);
        return CTL_EXIT_TRANSPORT;
    }
    cleanup_free char *json = pbjson_from_message(reply, PBJSON_PRETTY);
    protobuf_c_message_free_unpacked(reply, NULL);
    printf("%s\n", json ? json : "null");
    fflush(stdout);
    return 0;
}

static bool parse_ulong_max(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || errno || v > max)
        return false;
    *out = v;
    return true;
}

/* Say what is wrong with the command line; returns CTL_EXIT_USAGE. */
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("agent-ctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CTL_EXIT_USAGE;
}

int ctl_cmd_connect(const struct ctl_global *g, int argc, char **argv)
{
    enum { OPT_HYBRID = 256, OPT_HYBRID_PORT };
    static const struct option opts[] = {
        {"server-address", required_argument, NULL, 's'},
        {"bundle-dir", required_argument, NULL, 'b'},
        {"timeout", required_argument, NULL, 't'},
        {"cmd", required_argument, NULL, 'c'},
        {"no-auto-values", no_argument, NULL, 'n'},
        {"hybrid-vsock", no_argument, NULL, OPT_HYBRID},
        {"hybrid-vsock-port", required_argument, NULL, OPT_HYBRID_PORT},
        {NULL, 0, NULL, 0},
    };
    struct connect_opts o = {.timeout_s = 60,
                             .auto_values = true,
                             .show_requests = g->show_requests};
    bool hybrid = false;
    unsigned long port = CTL_HYBRID_VSOCK_DEFAULT_PORT;
    const char **cmds = ka_xcalloc((size_t)argc, sizeof(*cmds));
    size_t n_cmds = 0;
    int opt, rc = 0;
    optind = 0; /* glibc: start over, from argv[1] */
    while ((opt = getopt_long(argc, argv, "s:b:t:c:n", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            o.addr = optarg;
            break;
        case 'b':
            o.bundle_dir = optarg;
            break;
        case 't':
            if (!parse_ulong_max(optarg, 86400, &o.timeout_s))
                rc = usage_error("--timeout takes 0 to 86400 seconds");
            break;
        case 'c':
            cmds[n_cmds++] = optarg;
            break;
        case 'n':
            o.auto_values = false;
            break;
        case OPT_HYBRID:
            hybrid = true;
            break;
        case OPT_HYBRID_PORT:
            if (!parse_ulong_max(optarg, UINT32_MAX, &port) || port == 0)
                rc = usage_error("--hybrid-vsock-port takes 1 to 4294967295");
            break;
        default:
            rc = CTL_EXIT_USAGE; /* getopt said what */
        }
    }
    if (!rc && optind < argc)
        rc = usage_error("connect: unexpected '%s' (commands go after -c)", argv[optind]);
    if (!rc && !o.addr)
        rc = usage_error("connect needs --server-address");
    if (!rc && n_cmds == 0)
        rc = usage_error("connect needs at least one -c COMMAND");
    if (rc) {
        free(cmds);
        return rc;
    }
    o.hybrid_vsock_port = hybrid ? (uint32_t)port : 0;
    random_id(o.container_id);
    random_id(o.sandbox_id);
    random_id(o.exec_id);

    struct ttrpc_client c;
    struct ka_error err;
    if (ctl_dial(&c, o.addr, o.hybrid_vsock_port, o.timeout_s, &err) < 0) {
        fprintf(stderr, "agent-ctl: %s\n", err.msg);
        free(cmds);
        return CTL_EXIT_TRANSPORT;
    }
    for (size_t i = 0; i < n_cmds && rc == 0; i++)
        rc = run_command(&c, cmds[i], &o);
    ttrpc_client_close(&c);
    free(cmds);
    return rc < 0 ? 0 : rc; /* quit */
}

int ctl_cmd_examples(void)
{
    fputs(
        "# kata-agent-ctl's style: RPCs by name, run in order on one connection.\n"
        "agent-ctl connect --server-address vsock://3:1024 -c Check -c GetGuestDetails\n"
        "agent-ctl -l debug connect --server-address unix://@/tmp/foo.socket \\\n"
        "    --bundle-dir bundle -c Check \\\n"
        "    -c 'GetGuestDetails json://{\"mem_block_size\": true, \"mem_hotplug_probe\": true}'\n"
        "agent-ctl connect --server-address unix:///run/agent.sock -n \\\n"
        "    -c 'CreateSandbox json://{\"sandbox_id\": \"foo\", \"hostname\": \"foo\"}'\n"
        "agent-ctl connect --server-address unix:///run/agent.sock --bundle-dir bundle \\\n"
        "    -c 'CreateContainer container_id=c1 exec_id=c1' -c 'StartContainer container_id=c1'\n"
        "agent-ctl connect --server-address unix:///run/agent.sock \\\n"
        "    -c 'StatsContainer json://{\"container_id\": \"c1\"}' -c 'PauseContainer container_id=c1'\n"
        "agent-ctl connect --server-address unix:///run/agent.sock -c 'WaitProcess file:///tmp/wait.json'\n"
        "# Hybrid vsock (Cloud Hypervisor, Firecracker): CONNECT PORT on a unix socket.\n"
        "agent-ctl connect --server-address hvsock:///run/vc/vm/foo/clh.sock:1024 -c Check\n"
        "agent-ctl connect --server-address unix:///run/vc/firecracker/foo/root/kata.hvsock \\\n"
        "    --hybrid-vsock -c Check\n"
        "\n"
        "# agent-ctl's own verbs (--addr takes every address form above).\n"
        "agent-ctl --addr vsock://3:1024 check\n"
        "agent-ctl --addr unix:///run/agent.sock call GetGuestDetails '{\"mem_block_size\": true}'\n"
        "agent-ctl --addr unix:///run/agent.sock call StatsContainer @stats.json\n"
        "agent-ctl --addr unix:///run/agent.sock run --sandbox -t -i bundle c1\n"
        "agent-ctl --addr unix:///run/agent.sock exec -t c1 -- sh\n",
        stdout);
    return 0;
}
