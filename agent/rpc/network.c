/* Guest networking: UpdateInterface, UpdateRoutes, ListInterfaces, ListRoutes,
 * AddARPNeighbors. The protobuf requests become net/netconf specs here (every
 * field checked before anything changes) and the guest's state comes back as
 * protobuf from net/rtnl snapshots. Each call opens its own rtnetlink socket: the
 * exchange is synchronous and local, and no state outlives the call. */
#include "agent.h"
#include "core/log.h"
#include "core/util.h"
#include "net/netconf.h"
#include "net/rtnl.h"
#include "rpc/devices.h"
#include "rpc/dispatch.h"

#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>

#include "agent.pb-c.h"
#include "types.pb-c.h"

static int family_hint(int proto_family, struct ka_error *err)
{
    int hint = ka_net_family_hint(proto_family);
    if (hint < 0)
        ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                            "family %d is neither v4 (0) nor v6 (1)", proto_family);
    return hint;
}

static int iface_spec(const Types__Interface *in, struct ka_iface_spec *spec, struct ka_error *err)
{
    if (ka_iface_spec_init(spec, in->hwaddr, in->name, in->mtu, in->raw_flags, in->n_ipaddresses,
                           err) < 0)
        return -1;
    for (size_t i = 0; i < in->n_ipaddresses; i++) {
        const Types__IPAddress *ip = in->ipaddresses[i];
        int hint = family_hint(ip->family, err);
        if (hint < 0 || ka_iface_spec_add_addr(spec, hint, ip->address, ip->mask, err) < 0)
            return ka_error_wrap(err, "IP address %zu", i);
    }
    return 0;
}

/* Interface.devicePath (3.3's pciPath, same field): the NIC's PCI path. As 4.x,
 * wait (parked, up to agent.hotplug_timeout) for its interface to exist: a
 * hot-plugged NIC may not be there yet when the runtime configures it. 1 when it
 * is (its name in *netdev), 0 when the call is parked, -1 on error. Upstream's
 * pxb-pcie form (a root complex first) is not supported: INVALID_ARGUMENT. */
static int await_nic(struct agent *a, struct ttrpc_call *call, const char *device_path,
                     char *netdev, size_t size, struct ka_error *err)
{
    cleanup_free struct rpc_dev_set *set = ka_xcalloc(1, sizeof(*set));
    struct rpc_dev_need *need = &set->needs[set->n++];
    need->device = -1;
    if (ka_dev_query_net_pci(&need->q, device_path, err) < 0)
        return ka_error_wrap(err, "devicePath");
    int rc = rpc_await_devices(a, call, set, err);
    if (rc > 0)
        snprintf(netdev, size, "%s", need->found.node);
    return rc;
}

static int update_interface(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                            struct ka_error *err)
{
    const Grpc__UpdateInterfaceRequest *req = (const Grpc__UpdateInterfaceRequest *)m;
    const Types__Interface *in = req->interface;
    if (!in)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "empty update interface request");
    struct ka_iface_spec spec;
    cleanup_nl struct ka_nl nl = {0};
    int rc = iface_spec(in, &spec, err);
    char netdev[KA_IFNAMSIZ] = "";
    if (rc == 0 && in->pcipath[0]) {
        rc = await_nic(a, call, in->pcipath, netdev, sizeof(netdev), err);
        if (rc == 0) { /* parked: replayed from the top once it is there */
            ka_iface_spec_free(&spec);
            return 0;
        }
        rc = rc < 0 ? -1 : 0;
    }
    if (rc == 0)
        rc = ka_nl_open(&nl, err);
    /* The NIC's MAC made the host's before the lookup by MAC; as upstream, a
     * failure here only leaves that lookup to succeed or fail on its own. */
    if (rc == 0 && netdev[0]) {
        struct ka_error mac_err;
        if (ka_net_set_link_mac(&nl, netdev, spec.mac, &mac_err) < 0)
            ka_log_kv(KA_LOG_WARN, "network", "MAC reconciliation failed, looking up by MAC",
                      "device_path", in->pcipath, "netdev", netdev, "error", mac_err.msg, NULL);
    }
    if (rc == 0)
        rc = ka_net_update_interface(&nl, &spec, err);
    ka_iface_spec_free(&spec);
    if (rc < 0)
        return ka_error_wrap(err, "update interface %.64s", in->hwaddr);
    /* Upstream answers with the interface as it was asked for. */
    rpc_reply(call, &in->base);
    return 0;
}

/* A Route as ListRoutes shows it: dest "" for a default route, source the source
 * prefix or else the preferred source (so the list can be sent back as it is). */
static Types__Route *route_to_proto(const struct ka_net_state *st, const struct ka_route *r)
{
    char text[KA_INET_STRLEN];
    Types__Route *out = ka_xmalloc(sizeof(*out));
    types__route__init(out);
    if (r->dst.plen > 0)
        out->dest = ka_xstrdup(ka_inet_format(&r->dst, true, text, sizeof(text)));
    if (r->gateway.family)
        out->gateway = ka_xstrdup(ka_inet_format(&r->gateway, false, text, sizeof(text)));
    const struct ka_link *l = r->oif ? ka_net_link_by_index(st, r->oif) : NULL;
    if (l)
        out->device = ka_xstrdup(l->name);
    if (r->src.family)
        out->source = ka_xstrdup(ka_inet_format(&r->src, true, text, sizeof(text)));
    else if (r->prefsrc.family)
        out->source = ka_xstrdup(ka_inet_format(&r->prefsrc, false, text, sizeof(text)));
    out->scope = r->scope;
    out->family = r->family == AF_INET6 ? TYPES__IPFAMILY__v6 : TYPES__IPFAMILY__v4;
    out->flags = r->flags & RTNH_F_ONLINK;
    out->mtu = r->mtu;
    return out;
}

/* Answer with the main table's routes, IPv4 then IPv6 (as upstream lists them).
 * Every string is heap-allocated or protobuf-c's default, so free_unpacked frees it. */
static int reply_routes(struct ttrpc_call *call, struct ka_nl *nl, struct ka_error *err)
{
    cleanup_net_state struct ka_net_state st = {0};
    if (ka_net_state_load_links(nl, &st, err) < 0 || ka_net_state_load_routes(nl, &st, err) < 0)
        return -1;
    Grpc__Routes *routes = ka_xmalloc(sizeof(*routes));
    grpc__routes__init(routes);
    routes->routes = ka_xcalloc(st.nroutes ? st.nroutes : 1, sizeof(*routes->routes));
    for (size_t i = 0; i < st.nroutes; i++)
        if (st.routes[i].table == RT_TABLE_MAIN)
            routes->routes[routes->n_routes++] = route_to_proto(&st, &st.routes[i]);
    rpc_reply(call, &routes->base);
    protobuf_c_message_free_unpacked(&routes->base, NULL);
    return 0;
}

static int update_routes(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                         struct ka_error *err)
{
    (void)a;
    const Grpc__UpdateRoutesRequest *req = (const Grpc__UpdateRoutesRequest *)m;
    if (!req->routes)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "empty update routes request");
    size_t n = req->routes->n_routes;
    if (n > KA_NET_MAX_REQ_ROUTES)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "update routes: %zu routes (at most %d)", n,
                                   KA_NET_MAX_REQ_ROUTES);
    cleanup_free struct ka_route_spec *specs = ka_xcalloc(n ? n : 1, sizeof(*specs));
    for (size_t i = 0; i < n; i++) {
        const Types__Route *r = req->routes->routes[i];
        int hint = family_hint(r->family, err);
        if (hint < 0 || ka_route_spec_parse(&specs[i], hint, r->dest, r->gateway, r->device,
                                            r->source, r->scope, r->flags, err) < 0)
            return ka_error_wrap(err, "update routes: route %zu (dest '%.64s', device '%.20s')", i,
                                 r->dest, r->device);
        specs[i].mtu = r->mtu; /* passed on as upstream does: the kernel judges it */
    }
    cleanup_nl struct ka_nl nl = {0};
    if (ka_nl_open(&nl, err) < 0)
        return -1;
    if (ka_net_update_routes(&nl, specs, n, err) < 0)
        return ka_error_wrap(err, "update routes");
    if (reply_routes(call, &nl, err) < 0)
        return ka_error_wrap(err, "list routes after the update");
    return 0;
}

static Types__Interface *link_to_proto(const struct ka_net_state *st, const struct ka_link *l)
{
    char text[KA_HWADDR_STRLEN > KA_INET_STRLEN ? KA_HWADDR_STRLEN : KA_INET_STRLEN];
    Types__Interface *out = ka_xmalloc(sizeof(*out));
    types__interface__init(out);
    out->device = ka_xstrdup(l->name);
    out->name = ka_xstrdup(l->name);
    out->mtu = l->mtu;
    if (l->hwaddr_len)
        out->hwaddr = ka_xstrdup(ka_hwaddr_format(l->hwaddr, l->hwaddr_len, text, sizeof(text)));
    if (l->kind[0])
        out->type = ka_xstrdup(l->kind);
    out->raw_flags = l->flags;
    size_t n = 0;
    for (size_t i = 0; i < st->naddrs; i++)
        n += st->addrs[i].ifindex == l->index;
    out->ipaddresses = n ? ka_xcalloc(n, sizeof(*out->ipaddresses)) : NULL;
    for (size_t i = 0; i < st->naddrs; i++) {
        const struct ka_ifaddr *a = &st->addrs[i];
        if (a->ifindex != l->index)
            continue;
        Types__IPAddress *ip = ka_xmalloc(sizeof(*ip));
        types__ipaddress__init(ip);
        ip->family = a->local.family == AF_INET6 ? TYPES__IPFAMILY__v6 : TYPES__IPFAMILY__v4;
        ip->address = ka_xstrdup(ka_inet_format(&a->local, false, text, sizeof(text)));
        snprintf(text, sizeof(text), "%u", a->local.plen);
        ip->mask = ka_xstrdup(text);
        out->ipaddresses[out->n_ipaddresses++] = ip;
    }
    return out;
}

/* Every link with its addresses. Beyond upstream (name, hwAddr, mtu, addresses)
 * it fills device, type and raw_flags, as the Go runtime's own scans do. */
static int list_interfaces(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                           struct ka_error *err)
{
    (void)a, (void)m;
    cleanup_nl struct ka_nl nl = {0};
    cleanup_net_state struct ka_net_state st = {0};
    if (ka_nl_open(&nl, err) < 0 || ka_net_state_load_links(&nl, &st, err) < 0 ||
        ka_net_state_load_addrs(&nl, &st, err) < 0)
        return ka_error_wrap(err, "list interfaces");
    Grpc__Interfaces *list = ka_xmalloc(sizeof(*list));
    grpc__interfaces__init(list);
    list->interfaces = ka_xcalloc(st.nlinks ? st.nlinks : 1, sizeof(*list->interfaces));
    for (size_t i = 0; i < st.nlinks; i++)
        list->interfaces[list->n_interfaces++] = link_to_proto(&st, &st.links[i]);
    rpc_reply(call, &list->base);
    protobuf_c_message_free_unpacked(&list->base, NULL);
    return 0;
}

static int list_routes(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                       struct ka_error *err)
{
    (void)a, (void)m;
    cleanup_nl struct ka_nl nl = {0};
    if (ka_nl_open(&nl, err) < 0 || reply_routes(call, &nl, err) < 0)
        return ka_error_wrap(err, "list routes");
    return 0;
}

static int add_arp_neighbors(struct agent *a, struct ttrpc_call *call, const ProtobufCMessage *m,
                             struct ka_error *err)
{
    (void)a;
    const Grpc__AddARPNeighborsRequest *req = (const Grpc__AddARPNeighborsRequest *)m;
    if (!req->neighbors)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "empty add arp neighbours request");
    size_t n = req->neighbors->n_arpneighbors;
    if (n > KA_NET_MAX_REQ_NEIGHS)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "add ARP neighbours: %zu neighbours (at most %d)", n,
                                   KA_NET_MAX_REQ_NEIGHS);
    cleanup_free struct ka_neigh_spec *specs = ka_xcalloc(n ? n : 1, sizeof(*specs));
    for (size_t i = 0; i < n; i++) {
        const Types__ARPNeighbor *ne = req->neighbors->arpneighbors[i];
        const Types__IPAddress *ip = ne->toipaddress;
        if (!ip)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "add ARP neighbours: neighbour %zu has no toIPAddress", i);
        int hint = family_hint(ip->family, err);
        if (hint < 0 || ka_neigh_spec_parse(&specs[i], hint, ip->address, ne->device, ne->lladdr,
                                            ne->state, ne->flags, err) < 0)
            return ka_error_wrap(err, "add ARP neighbours: neighbour %zu (%.64s)", i, ip->address);
    }
    cleanup_nl struct ka_nl nl = {0};
    if (ka_nl_open(&nl, err) < 0 || ka_net_add_neighbors(&nl, specs, n, err) < 0)
        return ka_error_wrap(err, "add ARP neighbours");
    rpc_reply(call, NULL);
    return 0;
}

const struct rpc_handler rpc_network_handlers[] = {
    {"UpdateInterface", update_interface},  {"UpdateRoutes", update_routes},
    {"ListInterfaces", list_interfaces},    {"ListRoutes", list_routes},
    {"AddARPNeighbors", add_arp_neighbors}, {NULL, NULL},
};
