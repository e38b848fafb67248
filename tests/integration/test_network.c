/* Guest networking through the real agent, each test in a fresh network namespace
 * (the agent's own, from agent_start_isolated_netns): UpdateInterface,
 * UpdateRoutes, ListInterfaces, ListRoutes and AddARPNeighbors, IPv4 and IPv6,
 * their error cases (and that a refused request changes nothing), and a container
 * that reaches a server in a peer namespace over a veth configured only through
 * these RPCs. The state is read back with `ip -j` run in the agent's namespace
 * (nsenter), independent of the agent's own netlink code. Root only. */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctr.h"
#include "json.h"
#include "types.pb-c.h"

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Per test: the agent, a client, and what the test started in other namespaces
 * (killed in teardown, which cmocka runs after a failure too). */
static struct {
    struct agent_proc agent;
    struct ctr t;
    bool open;
    pid_t peer;       /* holds the peer network namespace */
    pid_t servers[4]; /* nc servers in the peer namespace */
} fx;

static const char *rootfs;

static int group_setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "network tests need root\n");
        return -1;
    }
    rootfs = getenv("KA_TEST_ROOTFS");
    return 0;
}

/* Kill and reap a child we started. */
static void reap(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
    }
    *pid = 0;
}

static void sh_agent(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof(fx));
    agent_start_isolated_netns(&fx.agent, NULL);
    ctr_open(&fx.t, &fx.agent);
    fx.open = true;
    sh_agent("ip link set lo up");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(fx.servers) / sizeof(fx.servers[0]); i++)
        reap(&fx.servers[i]);
    reap(&fx.peer);
    if (fx.open)
        ctr_close(&fx.t);
    fx.open = false;
    /* The agent's namespace, and every veth end in it, goes with the agent. */
    agent_stop(&fx.agent);
    return 0;
}

/* Run a shell command line; returns its exit status, output in out (if given). */
static int vrun(char *out, size_t size, const char *fmt, va_list ap)
{
    char cmd[2048];
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = 0;
    char sink[4096];
    for (;;) {
        /* cppcheck-suppress legacyUninitvar ; sink is only written to (fread) */
        char *buf = out ? out + n : sink;
        size_t room = out ? size - 1 - n : sizeof(sink);
        if (room == 0)
            break;
        size_t r = fread(buf, 1, room, p);
        if (r == 0)
            break;
        if (out)
            n += r;
    }
    if (out)
        out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int run(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vrun(out, size, fmt, ap);
    va_end(ap);
    return rc;
}

/* A command (test setup) in the agent's network namespace; it must succeed. */
static void sh_agent(const char *fmt, ...)
{
    char cmd[1024], full[1200], out[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "nsenter --net=/proc/%d/ns/net %s 2>&1", (int)fx.agent.pid, cmd);
    if (run(out, sizeof(out), "%s", full) != 0)
        fail_msg("'%s' failed: %s", cmd, out);
}

static void sh_peer(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh_peer(const char *fmt, ...)
{
    char cmd[1024], full[1200], out[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "nsenter --net=/proc/%d/ns/net %s 2>&1", (int)fx.peer, cmd);
    if (run(out, sizeof(out), "%s", full) != 0)
        fail_msg("peer: '%s' failed: %s", cmd, out);
}

/* `ip -j ARGS` in the agent's namespace, parsed. */
static struct json_object *ip_json(const char *args)
{
    static char out[1 << 17];
    if (run(out, sizeof(out), "nsenter --net=/proc/%d/ns/net ip -j %s", (int)fx.agent.pid, args) !=
        0)
        fail_msg("ip -j %s failed", args);
    struct json_object *v = NULL;
    struct ka_error err;
    if (ctl_json_parse(out, strlen(out), &v, &err) < 0 || !json_object_is_type(v, json_type_array))
        fail_msg("ip -j %s: %s", args, out);
    return v;
}

/* The member named key, or NULL. */
static struct json_object *jget(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v = jget(o, key);
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static long jnum(struct json_object *o, const char *key)
{
    struct json_object *v = jget(o, key);
    return json_object_is_type(v, json_type_int) ? (long)json_object_get_int64(v) : -1;
}

static bool jhas(struct json_object *o, const char *key, const char *s)
{
    struct json_object *v = jget(o, key);
    if (!json_object_is_type(v, json_type_array))
        return false;
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        struct json_object *item = json_object_array_get_idx(v, i);
        if (json_object_is_type(item, json_type_string) &&
            strcmp(json_object_get_string(item), s) == 0)
            return true;
    }
    return false;
}

struct link_info {
    bool exists, up, noarp;
    long mtu;
    char mac[32];
};

static struct link_info link_info(const char *name)
{
    struct link_info li = {0};
    struct json_object *links = ip_json("link show");
    for (size_t i = 0; i < json_object_array_length(links); i++) {
        struct json_object *l = json_object_array_get_idx(links, i);
        const char *n = jstr(l, "ifname");
        if (!n || strcmp(n, name) != 0)
            continue;
        li.exists = true;
        li.up = jhas(l, "flags", "UP");
        li.noarp = jhas(l, "flags", "NOARP");
        li.mtu = jnum(l, "mtu");
        snprintf(li.mac, sizeof(li.mac), "%s", jstr(l, "address") ? jstr(l, "address") : "");
    }
    json_object_put(links);
    return li;
}

/* The name of the link with this MAC ("" if none). */
static const char *link_with_mac(const char *mac)
{
    static char name[32];
    name[0] = '\0';
    struct json_object *links = ip_json("link show");
    for (size_t i = 0; i < json_object_array_length(links); i++) {
        struct json_object *l = json_object_array_get_idx(links, i);
        const char *a = jstr(l, "address");
        if (a && strcasecmp(a, mac) == 0)
            snprintf(name, sizeof(name), "%s", jstr(l, "ifname"));
    }
    json_object_put(links);
    return name;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted lines joined by sep into out. */
static void join_sorted(char **lines, size_t n, const char *sep, char *out, size_t size)
{
    /* cppcheck-suppress uninitvar ; the callers fill lines[0..n) */
    qsort(lines, n, sizeof(*lines), cmp_str);
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(out + o, o < size ? size - o : 0, "%s%s", i ? sep : "", lines[i]);
        free(lines[i]);
    }
}

/* A link's global addresses, "10.0.0.2/24 2001:db8::2/64" (sorted; link-local left out). */
static const char *addrs_of(const char *dev)
{
    static char out[2048];
    char args[64], *lines[64];
    size_t n = 0;
    snprintf(args, sizeof(args), "addr show dev %s", dev);
    struct json_object *links = ip_json(args);
    assert_int_equal(json_object_array_length(links), 1);
    struct json_object *ai = jget(json_object_array_get_idx(links, 0), "addr_info");
    for (size_t i = 0; ai && i < json_object_array_length(ai) && n < 64; i++) {
        struct json_object *a = json_object_array_get_idx(ai, i);
        if (jstr(a, "scope") && strcmp(jstr(a, "scope"), "link") == 0)
            continue;
        char line[80];
        snprintf(line, sizeof(line), "%s/%ld", jstr(a, "local"), jnum(a, "prefixlen"));
        lines[n++] = strdup(line);
    }
    json_object_put(links);
    join_sorted(lines, n, " ", out, sizeof(out));
    return out;
}

/* Wait until no address of dev is tentative (IPv6 duplicate address detection). */
static void wait_dad(const char *dev)
{
    char args[64];
    snprintf(args, sizeof(args), "-6 addr show dev %s", dev);
    for (int i = 0; i < 500; i++) {
        struct json_object *links = ip_json(args);
        bool tentative = false;
        struct json_object *ai = json_object_array_length(links)
                                     ? jget(json_object_array_get_idx(links, 0), "addr_info")
                                     : NULL;
        for (size_t j = 0; ai && j < json_object_array_length(ai); j++)
            if (jget(json_object_array_get_idx(ai, j), "tentative"))
                tentative = true;
        json_object_put(links);
        if (!tentative)
            return;
        usleep(20000);
    }
    fail_msg("IPv6 addresses of %s stay tentative", dev);
}

/* The main table as canonical lines ("default via 10.0.0.1 dev eth0",
 * "10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.2"), sorted, one per
 * line; only routes through dev when dev is given. */
static const char *routes_of(int family, const char *dev)
{
    static char out[8192];
    char *lines[256];
    size_t n = 0;
    struct json_object *rs =
        ip_json(family == 6 ? "-6 route show table main" : "-4 route show table main");
    for (size_t i = 0; i < json_object_array_length(rs) && n < 256; i++) {
        struct json_object *r = json_object_array_get_idx(rs, i);
        const char *d = jstr(r, "dev");
        if (dev && (!d || strcmp(d, dev) != 0))
            continue;
        char line[256];
        int o = snprintf(line, sizeof(line), "%s", jstr(r, "dst"));
        if (jstr(r, "gateway"))
            o += snprintf(line + o, sizeof(line) - (size_t)o, " via %s", jstr(r, "gateway"));
        if (d)
            o += snprintf(line + o, sizeof(line) - (size_t)o, " dev %s", d);
        if (jstr(r, "protocol"))
            o += snprintf(line + o, sizeof(line) - (size_t)o, " proto %s", jstr(r, "protocol"));
        if (jstr(r, "scope"))
            o += snprintf(line + o, sizeof(line) - (size_t)o, " scope %s", jstr(r, "scope"));
        if (jstr(r, "prefsrc"))
            o += snprintf(line + o, sizeof(line) - (size_t)o, " src %s", jstr(r, "prefsrc"));
        if (jhas(r, "flags", "onlink"))
            snprintf(line + o, sizeof(line) - (size_t)o, " onlink");
        lines[n++] = strdup(line);
    }
    json_object_put(rs);
    join_sorted(lines, n, "\n", out, sizeof(out));
    return out;
}

static void assert_routes(int family, const char *dev, const char *want)
{
    const char *got = routes_of(family, dev);
    if (strcmp(got, want) != 0)
        fail_msg("IPv%d routes%s%s:\n%s\n--- want:\n%s", family, dev ? " of " : "", dev ? dev : "",
                 got, want);
}

/* A veth pair inside the agent's namespace; returns the MAC of the first end. */
static const char *make_veth(const char *name, const char *peer)
{
    static char mac[4][32];
    static int k;
    k = (k + 1) % 4;
    sh_agent("ip link add %s type veth peer name %s", name, peer);
    snprintf(mac[k], sizeof(mac[k]), "%s", link_info(name).mac);
    assert_true(mac[k][0]);
    return mac[k];
}

/* Request builders: messages on the stack, strings borrowed. */
static Types__IPAddress ipaddr(int family, const char *address, const char *mask)
{
    Types__IPAddress a = TYPES__IPADDRESS__INIT;
    a.family = family;
    a.address = (char *)address;
    a.mask = (char *)mask;
    return a;
}

static int update_interface(const char *mac, const char *name, uint64_t mtu, uint32_t raw_flags,
                            Types__IPAddress **addrs, size_t naddrs, Types__Interface **reply)
{
    Types__Interface in = TYPES__INTERFACE__INIT;
    in.hwaddr = (char *)mac;
    in.name = (char *)name;
    in.device = (char *)"";
    in.mtu = mtu;
    in.raw_flags = raw_flags;
    in.ipaddresses = addrs;
    in.n_ipaddresses = naddrs;
    Grpc__UpdateInterfaceRequest req = GRPC__UPDATE_INTERFACE_REQUEST__INIT;
    req.interface = &in;
    return ctr_call(&fx.t, "UpdateInterface", &req.base, &types__interface__descriptor,
                    (ProtobufCMessage **)reply);
}

static Types__Route route(int family, const char *dest, const char *gw, const char *dev,
                          const char *src, uint32_t scope)
{
    Types__Route r = TYPES__ROUTE__INIT;
    r.family = family;
    r.dest = (char *)dest;
    r.gateway = (char *)gw;
    r.device = (char *)dev;
    r.source = (char *)src;
    r.scope = scope;
    return r;
}

static int update_routes(Types__Route **routes, size_t n, Grpc__Routes **reply)
{
    Grpc__Routes list = GRPC__ROUTES__INIT;
    list.routes = routes;
    list.n_routes = n;
    Grpc__UpdateRoutesRequest req = GRPC__UPDATE_ROUTES_REQUEST__INIT;
    req.routes = &list;
    return ctr_call(&fx.t, "UpdateRoutes", &req.base, &grpc__routes__descriptor,
                    (ProtobufCMessage **)reply);
}

/* The standard setup most tests start from: veth e0/e0p, e0 configured as eth0
 * with 10.0.0.2/24 and 2001:db8::2/64, the peer end up. */
static const char *configure_eth0(void)
{
    const char *mac = make_veth("e0", "e0p");
    sh_agent("ip link set e0p up");
    Types__IPAddress a4 = ipaddr(TYPES__IPFAMILY__v4, "10.0.0.2", "24");
    Types__IPAddress a6 = ipaddr(TYPES__IPFAMILY__v6, "2001:db8::2", "64");
    Types__IPAddress *addrs[] = {&a4, &a6};
    if (update_interface(mac, "eth0", 1500, 0, addrs, 2, NULL) != 0)
        fail_msg("UpdateInterface: %s", fx.t.msg);
    return mac;
}

static void test_update_interface(void **state)
{
    (void)state;
    const char *mac = make_veth("e0", "e0p");
    /* What was there before goes: an old address and the old name. */
    sh_agent("ip addr add 192.168.77.7/24 dev e0");
    sh_agent("ip -6 addr add 2001:db8:77::7/64 dev e0");
    sh_agent("ip link set e0 up");
    sh_agent("ip link set e0p up");

    Types__IPAddress a1 = ipaddr(TYPES__IPFAMILY__v4, "10.0.0.2", "24");
    Types__IPAddress a2 = ipaddr(TYPES__IPFAMILY__v4, "10.1.0.2", "16");
    Types__IPAddress a3 = ipaddr(TYPES__IPFAMILY__v6, "2001:db8::2", "64");
    Types__IPAddress *addrs[] = {&a1, &a2, &a3};
    char upper[32];
    snprintf(upper, sizeof(upper), "%s", mac);
    for (char *c = upper; *c; c++)
        *c = (char)(*c >= 'a' && *c <= 'f' ? *c - 32 : *c); /* MACs match in any case */
    Types__Interface *reply = NULL;
    if (update_interface(upper, "eth0", 1400, 0, addrs, 3, &reply) != 0)
        fail_msg("UpdateInterface: %s", fx.t.msg);
    /* The reply is the interface as requested. */
    assert_string_equal(reply->name, "eth0");
    assert_string_equal(reply->hwaddr, upper);
    assert_int_equal(reply->mtu, 1400);
    assert_int_equal(reply->n_ipaddresses, 3);
    assert_string_equal(reply->ipaddresses[2]->address, "2001:db8::2");
    assert_int_equal(reply->ipaddresses[2]->family, TYPES__IPFAMILY__v6);
    protobuf_c_message_free_unpacked(&reply->base, NULL);

    assert_false(link_info("e0").exists);
    struct link_info li = link_info("eth0");
    assert_true(li.exists);
    assert_string_equal(li.mac, mac);
    assert_true(li.up);
    assert_false(li.noarp);
    assert_int_equal(li.mtu, 1400);
    assert_string_equal(addrs_of("eth0"), "10.0.0.2/24 10.1.0.2/16 2001:db8::2/64");
    /* The kernel made the prefix routes for them. */
    assert_routes(4, "eth0",
                  "10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.2\n"
                  "10.1.0.0/16 dev eth0 proto kernel scope link src 10.1.0.2");

    /* Again with ARP off, no name (keep it), no MTU (keep it), one IPv6 address
     * whose family is left at v4 (proto3's default: the text decides). */
    Types__IPAddress b1 = ipaddr(TYPES__IPFAMILY__v4, "2001:db8:1::5", "48");
    Types__IPAddress *addrs2[] = {&b1};
    if (update_interface(mac, "", 0, IFF_NOARP, addrs2, 1, NULL) != 0)
        fail_msg("UpdateInterface: %s", fx.t.msg);
    li = link_info("eth0");
    assert_true(li.up);
    assert_true(li.noarp);
    assert_int_equal(li.mtu, 1400);
    assert_string_equal(addrs_of("eth0"), "2001:db8:1::5/48");
    /* And ARP back on, no addresses at all. */
    if (update_interface(mac, "eth0", 1500, 0, NULL, 0, NULL) != 0)
        fail_msg("UpdateInterface: %s", fx.t.msg);
    li = link_info("eth0");
    assert_false(li.noarp);
    assert_int_equal(li.mtu, 1500);
    assert_string_equal(addrs_of("eth0"), "");
}

/* The wanted name belongs to another link: it moves aside to <name>_temp and then
 * takes our old name (upstream swaps the two). Its state is kept. */
static void test_update_interface_name_taken(void **state)
{
    (void)state;
    const char *mac0 = make_veth("e0", "e0p");
    const char *mac1 = make_veth("e1", "e1p");
    sh_agent("ip addr add 10.5.0.1/24 dev e1");
    sh_agent("ip link set e1 up");
    sh_agent("ip link set e0p up");
    sh_agent("ip link set e1p up");
    Types__IPAddress a = ipaddr(TYPES__IPFAMILY__v4, "10.0.0.2", "24");
    Types__IPAddress *addrs[] = {&a};
    if (update_interface(mac0, "e1", 1500, 0, addrs, 1, NULL) != 0)
        fail_msg("UpdateInterface: %s", fx.t.msg);
    assert_string_equal(link_with_mac(mac0), "e1");
    assert_string_equal(link_with_mac(mac1), "e0");
    assert_false(link_info("e1_temp").exists);
    assert_true(link_info("e0").up);
    assert_string_equal(addrs_of("e0"), "10.5.0.1/24");
    assert_string_equal(addrs_of("e1"), "10.0.0.2/24");
    /* Its own name: nothing moves. */
    if (update_interface(mac0, "e1", 1500, 0, addrs, 1, NULL) != 0)
        fail_msg("UpdateInterface: %s", fx.t.msg);
    assert_string_equal(link_with_mac(mac0), "e1");
    assert_string_equal(link_with_mac(mac1), "e0");
}

/* Refused requests name what is wrong and leave the link as it was. */
static void test_update_interface_errors(void **state)
{
    (void)state;
    const char *mac = make_veth("e0", "e0p");
    const char *mac1 = make_veth("abcdefghijk0", "e1p");
    (void)mac1;
    sh_agent("ip addr add 192.168.77.7/24 dev e0");
    sh_agent("ip link set e0 up");

    Grpc__UpdateInterfaceRequest empty = GRPC__UPDATE_INTERFACE_REQUEST__INIT;
    assert_int_equal(ctr_call(&fx.t, "UpdateInterface", &empty.base, &types__interface__descriptor,
                              NULL),
                     KA_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fx.t.msg, "empty update interface request"));

    Types__IPAddress good = ipaddr(TYPES__IPFAMILY__v4, "10.0.0.2", "24");
    struct {
        const char *mac, *name;
        uint64_t mtu;
        Types__IPAddress bad;
        int code;
        const char *why;
    } cases[] = {
        {"02:00:00:00:00:99", "eth0", 1500, ipaddr(0, "10.0.0.3", "24"), KA_STATUS_NOT_FOUND,
         "no link with MAC address 02:00:00:00:00:99"},
        {"02:00:00:00:99", "eth0", 1500, ipaddr(0, "10.0.0.3", "24"), KA_STATUS_INVALID_ARGUMENT,
         "hwAddr '02:00:00:00:99' is not a MAC address"},
        {"", "eth0", 1500, ipaddr(0, "10.0.0.3", "24"), KA_STATUS_INVALID_ARGUMENT, "no hwAddr"},
        {mac, "eth0", 1500, ipaddr(0, "10.0.0.300", "24"), KA_STATUS_INVALID_ARGUMENT,
         "IP address 1: address '10.0.0.300' is not an IP address"},
        {mac, "eth0", 1500, ipaddr(0, "10.0.0.3", "33"), KA_STATUS_INVALID_ARGUMENT,
         "mask '33' of 10.0.0.3 is not an IPv4 prefix length"},
        {mac, "eth0", 1500, ipaddr(TYPES__IPFAMILY__v6, "10.0.0.3", "24"),
         KA_STATUS_INVALID_ARGUMENT, "'10.0.0.3' is IPv4 but the family says IPv6"},
        {mac, "eth0", 1500, ipaddr(7, "10.0.0.3", "24"), KA_STATUS_INVALID_ARGUMENT, "family 7"},
        {mac, "eth0", 1500, ipaddr(0, "10.0.0.2", "16"), KA_STATUS_INVALID_ARGUMENT,
         "listed twice"},
        {mac, "eth0:1", 1500, ipaddr(0, "10.0.0.3", "24"), KA_STATUS_INVALID_ARGUMENT,
         "'eth0:1' is not a valid link name"},
        {mac, "eth0", 70000, ipaddr(0, "10.0.0.3", "24"), KA_STATUS_INVALID_ARGUMENT,
         "mtu 70000 is outside e0's range"},
        {mac, "abcdefghijk0", 1500, ipaddr(0, "10.0.0.3", "24"), KA_STATUS_INVALID_ARGUMENT,
         "abcdefghijk0_temp is longer than 15 bytes"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Types__IPAddress *addrs[] = {&good, &cases[i].bad};
        int code = update_interface(cases[i].mac, cases[i].name, cases[i].mtu, 0, addrs, 2, NULL);
        if (code != cases[i].code || !strstr(fx.t.msg, cases[i].why))
            fail_msg("case %zu: code %d '%s', want %d '%s'", i, code, fx.t.msg, cases[i].code,
                     cases[i].why);
        struct link_info li = link_info("e0");
        assert_true(li.exists);
        assert_true(li.up);
        assert_int_equal(li.mtu, 1500);
        assert_string_equal(addrs_of("e0"), "192.168.77.7/24");
    }
    /* Too many addresses: refused before anything is looked at. */
    Types__IPAddress *many[300];
    for (size_t i = 0; i < 300; i++)
        many[i] = &good;
    assert_int_equal(update_interface(mac, "eth0", 1500, 0, many, 300, NULL),
                     KA_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fx.t.msg, "at most 256"));
    assert_string_equal(addrs_of("e0"), "192.168.77.7/24");
}

/* A route in a reply, as "dest|gateway|device|source|scope|family". */
static bool reply_has(const Grpc__Routes *r, const char *want)
{
    for (size_t i = 0; i < r->n_routes; i++) {
        const Types__Route *x = r->routes[i];
        char line[256];
        snprintf(line, sizeof(line), "%s|%s|%s|%s|%u|%d", x->dest, x->gateway, x->device, x->source,
                 x->scope, x->family);
        if (strcmp(line, want) == 0)
            return true;
    }
    return false;
}

static void test_update_routes(void **state)
{
    (void)state;
    configure_eth0();
    wait_dad("eth0");
    /* Routes the update replaces (not kernel, not on a "lo" link) and ones it keeps. */
    sh_agent("ip route add 10.50.0.0/16 via 10.0.0.50 dev eth0 proto static");
    sh_agent("ip -6 route add 2001:db8:50::/48 via 2001:db8::50 dev eth0");
    sh_agent("ip route add 192.0.2.0/24 dev lo");

    /* Gateway routes first in the request: the agent adds the link routes first. */
    Types__Route r1 = route(0, "", "10.9.0.1", "eth0", "", 0);
    Types__Route r2 = route(0, "10.9.0.0/16", "", "eth0", "10.0.0.2", RT_SCOPE_LINK);
    Types__Route r3 = route(0, "10.0.0.0/24", "", "eth0", "10.0.0.2", RT_SCOPE_LINK); /* exists */
    Types__Route r4 = route(TYPES__IPFAMILY__v6, "", "2001:db8::1", "eth0", "", 0);
    Types__Route r5 = route(TYPES__IPFAMILY__v6, "2001:db8:7::/64", "", "eth0", "2001:db8::2", 0);
    Types__Route r6 = route(0, "172.16.1.1", "10.0.0.254", "eth0", "", 0);
    Types__Route *routes[] = {&r1, &r2, &r3, &r4, &r5, &r6};
    Grpc__Routes *reply = NULL;
    if (update_routes(routes, 6, &reply) != 0)
        fail_msg("UpdateRoutes: %s", fx.t.msg);

    assert_routes(4, NULL,
                  "10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.2\n"
                  "10.9.0.0/16 dev eth0 scope link src 10.0.0.2\n"
                  "172.16.1.1 via 10.0.0.254 dev eth0\n"
                  "192.0.2.0/24 dev lo scope link\n"
                  "default via 10.9.0.1 dev eth0");
    assert_routes(6, "eth0",
                  "2001:db8:7::/64 dev eth0 src 2001:db8::2\n"
                  "2001:db8::/64 dev eth0 proto kernel\n"
                  "default via 2001:db8::1 dev eth0\n"
                  "fe80::/64 dev eth0 proto kernel");
    /* The reply is the main table afterwards (ListRoutes), v4 and v6. */
    static const char *const want[] = {
        "|10.9.0.1|eth0||0|0",
        "10.9.0.0/16||eth0|10.0.0.2|253|0",
        "10.0.0.0/24||eth0|10.0.0.2|253|0",
        "172.16.1.1/32|10.0.0.254|eth0||0|0",
        "192.0.2.0/24||lo||253|0",
        "|2001:db8::1|eth0||0|1",
        "2001:db8:7::/64||eth0|2001:db8::2|0|1",
        "2001:db8::/64||eth0||0|1",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!reply_has(reply, want[i]))
            fail_msg("UpdateRoutes reply lacks %s", want[i]);
    assert_false(reply_has(reply, "10.50.0.0/16|10.0.0.50|eth0||0|0"));
    protobuf_c_message_free_unpacked(&reply->base, NULL);

    /* An empty list leaves the kernel's routes and those on lo. */
    if (update_routes(NULL, 0, &reply) != 0)
        fail_msg("UpdateRoutes: %s", fx.t.msg);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    assert_routes(4, NULL,
                  "10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.2\n"
                  "192.0.2.0/24 dev lo scope link");
    assert_routes(6, "eth0",
                  "2001:db8::/64 dev eth0 proto kernel\nfe80::/64 dev eth0 proto kernel");

    /* The onlink flag: a gateway no route covers. */
    Types__Route o = route(0, "10.7.0.0/16", "192.168.1.1", "eth0", "", 0);
    o.flags = RTNH_F_ONLINK;
    Types__Route *onlink[] = {&o};
    if (update_routes(onlink, 1, &reply) != 0)
        fail_msg("UpdateRoutes: %s", fx.t.msg);
    bool seen = false;
    for (size_t i = 0; i < reply->n_routes; i++)
        if (strcmp(reply->routes[i]->dest, "10.7.0.0/16") == 0)
            seen = reply->routes[i]->flags == RTNH_F_ONLINK;
    assert_true(seen);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    assert_routes(4, "eth0",
                  "10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.2\n"
                  "10.7.0.0/16 via 192.168.1.1 dev eth0 onlink");
}

/* Refused route updates change nothing: the old routes are all still there. */
static void test_update_routes_errors(void **state)
{
    (void)state;
    configure_eth0();
    wait_dad("eth0");
    make_veth("e1", "e1p"); /* down */
    sh_agent("ip route add 10.50.0.0/16 via 10.0.0.50 dev eth0");
    sh_agent("ip -6 route add 2001:db8:50::/48 via 2001:db8::50 dev eth0");
    char before4[8192], before6[8192];
    snprintf(before4, sizeof(before4), "%s", routes_of(4, NULL));
    snprintf(before6, sizeof(before6), "%s", routes_of(6, NULL));

    Grpc__UpdateRoutesRequest empty = GRPC__UPDATE_ROUTES_REQUEST__INIT;
    assert_int_equal(ctr_call(&fx.t, "UpdateRoutes", &empty.base, &grpc__routes__descriptor, NULL),
                     KA_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fx.t.msg, "empty update routes request"));

    Types__Route good = route(0, "10.9.0.0/16", "", "eth0", "", RT_SCOPE_LINK);
    struct {
        Types__Route bad;
        uint32_t flags;
        int code;
        const char *why;
    } cases[] = {
        {route(0, "10.8.0.0/16", "", "eth9", "", RT_SCOPE_LINK), 0, KA_STATUS_NOT_FOUND,
         "route 10.8.0.0/16 dev eth9: no link named eth9"},
        {route(0, "10.8.0.0/16", "", "e1", "", RT_SCOPE_LINK), 0, KA_STATUS_FAILED_PRECONDITION,
         "link e1 is down"},
        {route(0, "", "192.168.9.1", "eth0", "", 0), 0, KA_STATUS_INVALID_ARGUMENT,
         "gateway 192.168.9.1 is not reachable on eth0"},
        {route(0, "10.8.0.0/16", "10.50.0.1", "eth0", "", 0), 0, KA_STATUS_INVALID_ARGUMENT,
         "gateway 10.50.0.1 is not reachable on eth0"},
        {route(TYPES__IPFAMILY__v6, "", "2001:db8:99::1", "eth0", "", 0), 0,
         KA_STATUS_INVALID_ARGUMENT, "gateway 2001:db8:99::1 is not reachable on eth0"},
        {route(TYPES__IPFAMILY__v6, "", "2001:db8::2", "eth0", "", 0), 0,
         KA_STATUS_INVALID_ARGUMENT, "gateway 2001:db8::2 is an address of this guest"},
        {route(0, "10.0.0.0/33", "", "eth0", "", 0), 0, KA_STATUS_INVALID_ARGUMENT,
         "route 1 (dest '10.0.0.0/33', device 'eth0'): dest '10.0.0.0/33' is not an IP address"},
        {route(0, "10.9.0.1/16", "", "eth0", "", 0), 0, KA_STATUS_INVALID_ARGUMENT,
         "has bits set past its prefix length"},
        {route(0, "10.8.0.0/16", "", "eth0", "10.0.0.99", 0), 0, KA_STATUS_INVALID_ARGUMENT,
         "source 10.0.0.99 is not an address of this guest"},
        {route(0, "10.8.0.0/16", "", "eth0", "", 300), 0, KA_STATUS_INVALID_ARGUMENT, "scope 300"},
        {route(5, "10.8.0.0/16", "", "eth0", "", 0), 0, KA_STATUS_INVALID_ARGUMENT, "family 5"},
        {route(0, "", "10.0.0.1", "eth0", "", 0), 1, KA_STATUS_INVALID_ARGUMENT,
         "only RTNH_F_ONLINK"},
        {route(0, "10.8.0.0/16", "2001:db8::1", "eth0", "", 0), 0, KA_STATUS_INVALID_ARGUMENT,
         "mix IPv4 and IPv6"},
        {route(0, "", "", "", "", 0), 0, KA_STATUS_INVALID_ARGUMENT, "no device"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cases[i].bad.flags = cases[i].flags;
        Types__Route *routes[] = {&good, &cases[i].bad};
        int code = update_routes(routes, 2, NULL);
        if (code != cases[i].code || !strstr(fx.t.msg, cases[i].why))
            fail_msg("case %zu: code %d '%s', want %d '%s'", i, code, fx.t.msg, cases[i].code,
                     cases[i].why);
        assert_string_equal(routes_of(4, NULL), before4);
        assert_string_equal(routes_of(6, NULL), before6);
    }
    Types__Route *many[1025];
    for (size_t i = 0; i < 1025; i++)
        many[i] = &good;
    assert_int_equal(update_routes(many, 1025, NULL), KA_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fx.t.msg, "at most 1024"));
    assert_string_equal(routes_of(4, NULL), before4);
}

static const Types__Interface *find_iface(const Grpc__Interfaces *l, const char *name)
{
    for (size_t i = 0; i < l->n_interfaces; i++)
        if (strcmp(l->interfaces[i]->name, name) == 0)
            return l->interfaces[i];
    return NULL;
}

static bool iface_has_addr(const Types__Interface *in, int family, const char *addr,
                           const char *mask)
{
    for (size_t i = 0; i < in->n_ipaddresses; i++)
        if ((int)in->ipaddresses[i]->family == family &&
            strcmp(in->ipaddresses[i]->address, addr) == 0 &&
            strcmp(in->ipaddresses[i]->mask, mask) == 0)
            return true;
    return false;
}

static void test_list(void **state)
{
    (void)state;
    const char *mac = configure_eth0();
    Grpc__ListInterfacesRequest lreq = GRPC__LIST_INTERFACES_REQUEST__INIT;
    Grpc__Interfaces *list = NULL;
    assert_int_equal(ctr_call(&fx.t, "ListInterfaces", &lreq.base, &grpc__interfaces__descriptor,
                              (ProtobufCMessage **)&list),
                     0);
    struct json_object *links = ip_json("link show");
    assert_int_equal(list->n_interfaces, json_object_array_length(links));
    json_object_put(links);
    const Types__Interface *eth0 = find_iface(list, "eth0");
    assert_non_null(eth0);
    assert_string_equal(eth0->device, "eth0");
    assert_string_equal(eth0->hwaddr, mac);
    assert_int_equal(eth0->mtu, 1500);
    assert_string_equal(eth0->type, "veth");
    assert_true(eth0->raw_flags & IFF_UP);
    assert_true(iface_has_addr(eth0, TYPES__IPFAMILY__v4, "10.0.0.2", "24"));
    assert_true(iface_has_addr(eth0, TYPES__IPFAMILY__v6, "2001:db8::2", "64"));
    const Types__Interface *lo = find_iface(list, "lo");
    assert_non_null(lo);
    assert_true(iface_has_addr(lo, TYPES__IPFAMILY__v4, "127.0.0.1", "8"));
    assert_true(iface_has_addr(lo, TYPES__IPFAMILY__v6, "::1", "128"));
    assert_non_null(find_iface(list, "e0p"));
    protobuf_c_message_free_unpacked(&list->base, NULL);

    Grpc__ListRoutesRequest rreq = GRPC__LIST_ROUTES_REQUEST__INIT;
    Grpc__Routes *routes = NULL;
    assert_int_equal(ctr_call(&fx.t, "ListRoutes", &rreq.base, &grpc__routes__descriptor,
                              (ProtobufCMessage **)&routes),
                     0);
    const char *v4 = routes_of(4, NULL);
    size_t lines = *v4 ? 1 : 0;
    for (const char *c = v4; *c; c++)
        lines += *c == '\n';
    const char *v6 = routes_of(6, NULL);
    lines += *v6 ? 1 : 0;
    for (const char *c = v6; *c; c++)
        lines += *c == '\n';
    assert_int_equal(routes->n_routes, lines);
    assert_true(reply_has(routes, "10.0.0.0/24||eth0|10.0.0.2|253|0"));
    assert_true(reply_has(routes, "fe80::/64||eth0||0|1"));
    /* IPv4 first, as upstream lists them. */
    assert_int_equal(routes->routes[0]->family, TYPES__IPFAMILY__v4);
    assert_int_equal(routes->routes[routes->n_routes - 1]->family, TYPES__IPFAMILY__v6);
    protobuf_c_message_free_unpacked(&routes->base, NULL);

    /* Each call's netlink socket is gone with the call, failed calls' too. */
    int fds = agent_fd_count(&fx.agent);
    Types__Route bad = route(0, "", "", "eth9", "", 0);
    Types__Route *badl[] = {&bad};
    for (int i = 0; i < 50; i++) {
        assert_int_equal(ctr_call(&fx.t, "ListInterfaces", &lreq.base,
                                  &grpc__interfaces__descriptor, NULL),
                         0);
        assert_int_equal(ctr_call(&fx.t, "ListRoutes", &rreq.base, &grpc__routes__descriptor, NULL),
                         0);
        assert_int_equal(update_routes(badl, 1, NULL), KA_STATUS_NOT_FOUND);
    }
    assert_int_equal(agent_wait_fd_count(&fx.agent, fds, 2000), fds);
}

static Types__ARPNeighbor neighbor(Types__IPAddress *ip, const char *dev, const char *lladdr,
                                   int state)
{
    Types__ARPNeighbor n = TYPES__ARPNEIGHBOR__INIT;
    n.toipaddress = ip;
    n.device = (char *)dev;
    n.lladdr = (char *)lladdr;
    n.state = state;
    return n;
}

static int add_neighbors(Types__ARPNeighbor **list, size_t n)
{
    Grpc__ARPNeighbors ns = GRPC__ARPNEIGHBORS__INIT;
    ns.arpneighbors = list;
    ns.n_arpneighbors = n;
    Grpc__AddARPNeighborsRequest req = GRPC__ADD_ARPNEIGHBORS_REQUEST__INIT;
    req.neighbors = &ns;
    return ctr_call(&fx.t, "AddARPNeighbors", &req.base, NULL, NULL);
}

/* "10.0.0.9 02:00:00:00:00:09 PERMANENT" for each neighbour on eth0, sorted. */
static const char *neighbors_of(const char *dev)
{
    static char out[4096];
    char args[64], *lines[64];
    size_t n = 0;
    snprintf(args, sizeof(args), "neigh show dev %s", dev);
    struct json_object *v = ip_json(args);
    for (size_t i = 0; i < json_object_array_length(v) && n < 64; i++) {
        struct json_object *e = json_object_array_get_idx(v, i);
        struct json_object *st = jget(e, "state");
        char line[160];
        snprintf(line, sizeof(line), "%s %s %s", jstr(e, "dst"),
                 jstr(e, "lladdr") ? jstr(e, "lladdr") : "-",
                 json_object_is_type(st, json_type_array) && json_object_array_length(st)
                     ? json_object_get_string(json_object_array_get_idx(st, 0))
                     : "?");
        lines[n++] = strdup(line);
    }
    json_object_put(v);
    join_sorted(lines, n, "\n", out, sizeof(out));
    return out;
}

static void test_arp_neighbors(void **state)
{
    (void)state;
    configure_eth0();
    Types__IPAddress ip4 = ipaddr(0, "10.0.0.9", "");
    Types__IPAddress ip6 = ipaddr(TYPES__IPFAMILY__v6, "2001:db8::9", "");
    Types__ARPNeighbor n4 = neighbor(&ip4, "eth0", "02:00:00:00:00:09", 0);
    Types__ARPNeighbor n6 = neighbor(&ip6, "eth0", "02:00:00:00:00:0A", NUD_PERMANENT);
    Types__ARPNeighbor *list[] = {&n4, &n6};
    if (add_neighbors(list, 2) != 0)
        fail_msg("AddARPNeighbors: %s", fx.t.msg);
    assert_string_equal(neighbors_of("eth0"), "10.0.0.9 02:00:00:00:00:09 PERMANENT\n"
                                              "2001:db8::9 02:00:00:00:00:0a PERMANENT");
    /* Again with another address: replaced, not refused. */
    n4.lladdr = (char *)"02:00:00:00:00:19";
    if (add_neighbors(list, 1) != 0)
        fail_msg("AddARPNeighbors: %s", fx.t.msg);
    assert_string_equal(neighbors_of("eth0"), "10.0.0.9 02:00:00:00:00:19 PERMANENT\n"
                                              "2001:db8::9 02:00:00:00:00:0a PERMANENT");

    Grpc__AddARPNeighborsRequest empty = GRPC__ADD_ARPNEIGHBORS_REQUEST__INIT;
    assert_int_equal(ctr_call(&fx.t, "AddARPNeighbors", &empty.base, NULL, NULL),
                     KA_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(fx.t.msg, "empty add arp neighbours request"));

    /* A good entry first: refused requests add nothing. */
    Types__IPAddress ipg = ipaddr(0, "10.0.0.10", "");
    Types__ARPNeighbor good = neighbor(&ipg, "eth0", "02:00:00:00:00:10", 0);
    Types__IPAddress bad_ip = ipaddr(0, "10.0.0.300", "");
    Types__IPAddress ok_ip = ipaddr(0, "10.0.0.11", "");
    struct {
        Types__ARPNeighbor bad;
        int code;
        const char *why;
    } cases[] = {
        {neighbor(&ok_ip, "eth9", "02:00:00:00:00:11", 0), KA_STATUS_NOT_FOUND,
         "neighbour 10.0.0.11: no link named eth9"},
        {neighbor(&bad_ip, "eth0", "02:00:00:00:00:11", 0), KA_STATUS_INVALID_ARGUMENT,
         "neighbour 1 (10.0.0.300): address '10.0.0.300' is not an IP address"},
        {neighbor(NULL, "eth0", "02:00:00:00:00:11", 0), KA_STATUS_INVALID_ARGUMENT,
         "no toIPAddress"},
        {neighbor(&ok_ip, "eth0", "02:00:00:00:11", 0), KA_STATUS_INVALID_ARGUMENT,
         "lladdr has 5 bytes but eth0's addresses have 6"},
        {neighbor(&ok_ip, "eth0", "02:00:00:00:00:1x", 0), KA_STATUS_INVALID_ARGUMENT,
         "lladdr '02:00:00:00:00:1x'"},
        {neighbor(&ok_ip, "eth0", "", 0x1000), KA_STATUS_INVALID_ARGUMENT, "state 4096"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Types__ARPNeighbor *l2[] = {&good, &cases[i].bad};
        int code = add_neighbors(l2, 2);
        if (code != cases[i].code || !strstr(fx.t.msg, cases[i].why))
            fail_msg("case %zu: code %d '%s', want %d '%s'", i, code, fx.t.msg, cases[i].code,
                     cases[i].why);
        assert_null(strstr(neighbors_of("eth0"), "10.0.0.10"));
    }
}

/* The peer namespace: a child that unshares a network namespace and waits to be
 * killed (also when this test process dies). */
static void start_peer(void)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fx.peer = fork();
    assert_true(fx.peer >= 0);
    if (fx.peer == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char ok = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
        if (write(p[1], &ok, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(p[1]);
    char ok = 0;
    assert_int_equal(read(p[0], &ok, 1), 1);
    close(p[0]);
    assert_int_equal(ok, 'y');
}

/* An echo server (busybox nc with cat) on port in the peer namespace. */
static pid_t start_echo_server(int port)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        char ns[64], portstr[16];
        snprintf(ns, sizeof(ns), "--net=/proc/%d/ns/net", (int)fx.peer);
        snprintf(portstr, sizeof(portstr), "%d", port);
        execlp("nsenter", "nsenter", ns, "/bin/busybox", "nc", "-l", "-p", portstr, "-e",
               "/bin/busybox", "cat", (char *)NULL);
        _exit(127);
    }
    /* Listening once its namespace's socket table shows the port in LISTEN (0A). */
    char want[16];
    snprintf(want, sizeof(want), ":%04X 0", port);
    for (int i = 0; i < 500; i++) {
        static const char *const tables[] = {"tcp", "tcp6"};
        for (size_t t = 0; t < 2; t++) {
            char path[64], line[512];
            snprintf(path, sizeof(path), "/proc/%d/net/%s", (int)pid, tables[t]);
            FILE *f = fopen(path, "r");
            while (f && fgets(line, sizeof(line), f))
                if (strstr(line, want) && strstr(line, " 0A "))
                    return fclose(f), pid;
            if (f)
                fclose(f);
        }
        usleep(10000);
    }
    fail_msg("echo server on port %d did not start", port);
    return -1;
}

/* The point of it all: a container, which shares the agent's network namespace,
 * reaches a server in another namespace over a veth the agent configured only
 * through UpdateInterface and UpdateRoutes. The server's addresses are behind the
 * peer (on its lo), so the default routes through the gateway carry the traffic. */
static void test_container_reaches_peer(void **state)
{
    (void)state;
    if (!rootfs)
        fail_msg("KA_TEST_ROOTFS is not set");
    start_peer();
    char out[4096];
    if (run(out, sizeof(out),
            "ip link add ka0 netns /proc/%d/ns/net type veth peer name kp0 netns /proc/%d/ns/net 2>&1",
            (int)fx.agent.pid, (int)fx.peer) != 0)
        fail_msg("veth: %s", out);
    sh_peer("ip link set lo up");
    sh_peer("ip addr add 10.200.0.1/24 dev kp0");
    sh_peer("ip -6 addr add 2001:db8:200::1/64 dev kp0 nodad");
    sh_peer("ip addr add 10.201.0.1/32 dev lo");
    sh_peer("ip -6 addr add 2001:db8:201::1/128 dev lo");
    sh_peer("ip link set kp0 up");

    const char *mac = link_info("ka0").mac;
    Types__IPAddress a4 = ipaddr(TYPES__IPFAMILY__v4, "10.200.0.2", "24");
    Types__IPAddress a6 = ipaddr(TYPES__IPFAMILY__v6, "2001:db8:200::2", "64");
    Types__IPAddress *addrs[] = {&a4, &a6};
    if (update_interface(mac, "eth0", 1500, 0, addrs, 2, NULL) != 0)
        fail_msg("UpdateInterface: %s", fx.t.msg);
    Types__Route r1 = route(0, "", "10.200.0.1", "eth0", "", 0);
    Types__Route r2 = route(0, "10.200.0.0/24", "", "eth0", "10.200.0.2", RT_SCOPE_LINK);
    Types__Route r3 = route(TYPES__IPFAMILY__v6, "", "2001:db8:200::1", "eth0", "", 0);
    Types__Route *routes[] = {&r1, &r2, &r3};
    if (update_routes(routes, 3, NULL) != 0)
        fail_msg("UpdateRoutes: %s", fx.t.msg);
    /* The guest's IPv6 address can carry traffic once duplicate address detection
     * has passed (the Kata runtime has the same wait before it). */
    wait_dad("eth0");

    fx.servers[0] = start_echo_server(5000);
    fx.servers[1] = start_echo_server(5001);
    if (ctr_create_sandbox(&fx.t, "net-sandbox") != 0)
        fail_msg("CreateSandbox: %s", fx.t.msg);
    Grpc__Spec *spec = spec_new(rootfs, ARGS("sh", "-c",
                                             "echo hello-v4 | nc 10.201.0.1 5000 && "
                                             "echo hello-v6 | nc 2001:db8:201::1 5001"));
    char got[4096];
    int status = ctr_run(&fx.t, "net-client", spec, got, sizeof(got));
    spec_free(spec);
    if (status != 0 || strcmp(got, "hello-v4\nhello-v6\n") != 0)
        fail_msg("container: status %d, output '%s'", status, got);
}

/* Route.mtu (4.x): UpdateRoutes sets the route's MTU metric, ListRoutes reports
 * it (and 0 for a route without one), IPv4 and IPv6 alike. */
static void test_route_mtu(void **state)
{
    (void)state;
    configure_eth0();
    wait_dad("eth0");
    Types__Route r4 = route(0, "10.8.0.0/16", "10.0.0.1", "eth0", "", 0);
    r4.mtu = 1400;
    Types__Route r6 = route(TYPES__IPFAMILY__v6, "2001:db8:8::/64", "2001:db8::1", "eth0", "", 0);
    r6.mtu = 1280;
    Types__Route plain = route(0, "10.6.0.0/16", "10.0.0.1", "eth0", "", 0);
    Types__Route *routes[] = {&r4, &r6, &plain};
    Grpc__Routes *reply = NULL;
    if (update_routes(routes, 3, &reply) != 0)
        fail_msg("UpdateRoutes: %s", fx.t.msg);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    char out[1024];
    assert_int_equal(run(out, sizeof(out),
                         "nsenter --net=/proc/%d/ns/net ip -4 route show 10.8.0.0/16 2>&1",
                         (int)fx.agent.pid),
                     0);
    if (!strstr(out, "mtu 1400"))
        fail_msg("IPv4 route without its MTU: %s", out);
    assert_int_equal(run(out, sizeof(out),
                         "nsenter --net=/proc/%d/ns/net ip -6 route show 2001:db8:8::/64 2>&1",
                         (int)fx.agent.pid),
                     0);
    if (!strstr(out, "mtu 1280"))
        fail_msg("IPv6 route without its MTU: %s", out);

    Grpc__ListRoutesRequest req = GRPC__LIST_ROUTES_REQUEST__INIT;
    assert_int_equal(ctr_call(&fx.t, "ListRoutes", &req.base, &grpc__routes__descriptor,
                              (ProtobufCMessage **)&reply),
                     0);
    int seen = 0;
    for (size_t i = 0; i < reply->n_routes; i++) {
        const Types__Route *x = reply->routes[i];
        if (strcmp(x->dest, "10.8.0.0/16") == 0 && ++seen)
            assert_int_equal(x->mtu, 1400);
        if (strcmp(x->dest, "2001:db8:8::/64") == 0 && ++seen)
            assert_int_equal(x->mtu, 1280);
        if (strcmp(x->dest, "10.6.0.0/16") == 0 && ++seen)
            assert_int_equal(x->mtu, 0);
    }
    assert_int_equal(seen, 3);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
}

/* A PCI slot on the root bus with a NIC in the host's sysfs (which the agent sees
 * too), or -1. */
static int host_pci_nic_slot(void)
{
    char out[4096];
    if (run(out, sizeof(out), "for n in /sys/class/net/*; do readlink -f $n; done") != 0)
        return -1;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned slot, fn;
        char rest[256];
        if (sscanf(line, "/sys/devices/pci0000:00/0000:00:%x.%u/%255s", &slot, &fn, rest) == 3 &&
            fn == 0 && slot < 0x20)
            return (int)slot;
    }
    return -1;
}

static int update_interface_at(const char *mac, const char *name, const char *device_path)
{
    Types__Interface in = TYPES__INTERFACE__INIT;
    in.hwaddr = (char *)mac;
    in.name = (char *)name;
    in.device = (char *)"";
    in.pcipath = (char *)device_path;
    Grpc__UpdateInterfaceRequest req = GRPC__UPDATE_INTERFACE_REQUEST__INIT;
    req.interface = &in;
    return ctr_call(&fx.t, "UpdateInterface", &req.base, NULL, NULL);
}

/* Interface.devicePath (4.x; 3.3's pciPath): the NIC at that PCI path must exist
 * before the interface is configured. A path that is not one is INVALID_ARGUMENT,
 * a NIC that never comes DEADLINE_EXCEEDED after agent.hotplug_timeout (3 s),
 * neither touching the link; a NIC that is there lets the update go on. */
static void test_update_interface_device_path(void **state)
{
    (void)state;
    const char *mac = make_veth("e5", "e5p");
    assert_int_equal(update_interface_at(mac, "eth5", "not/a/path"), 3);
    assert_non_null(strstr(fx.t.msg, "devicePath"));
    assert_string_equal(link_with_mac(mac), "e5");
    int absent = -1;
    for (int slot = 0x1f; slot > 0 && absent < 0; slot--) {
        char p[64];
        snprintf(p, sizeof(p), "/sys/bus/pci/devices/0000:00:%02x.0", slot);
        if (access(p, F_OK) != 0)
            absent = slot;
    }
    assert_true(absent > 0);
    char path[16];
    snprintf(path, sizeof(path), "%02x", absent);
    double t0 = now_s();
    assert_int_equal(update_interface_at(mac, "eth5", path), 4);
    assert_true(now_s() - t0 >= 2.5);
    assert_string_equal(link_with_mac(mac), "e5");

    int nic = host_pci_nic_slot();
    if (nic < 0) {
        fprintf(stderr, "no PCI NIC on this host's root bus: the found case is not run\n");
        return;
    }
    /* The host's NIC is in sysfs; in the agent's namespace only the veth has the
     * MAC, so reconciling by the NIC's name changes nothing here and the lookup by
     * MAC configures the veth. */
    snprintf(path, sizeof(path), "%02x", nic);
    if (update_interface_at(mac, "eth5", path) != 0)
        fail_msg("UpdateInterface with devicePath %s: %s", path, fx.t.msg);
    assert_string_equal(link_with_mac(mac), "eth5");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_update_interface, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_interface_name_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_interface_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_routes_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arp_neighbors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_reaches_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_mtu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_interface_device_path, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
