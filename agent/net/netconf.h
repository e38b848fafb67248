/* Guest network configuration as the Kata runtime asks for it: one interface
 * found by MAC and set up (UpdateInterface), the route table replaced
 * (UpdateRoutes), permanent neighbours added (AddARPNeighbors).
 *
 * Each operation runs in three stages, so that a bad request changes nothing:
 *   1. parse: the request's text fields into a spec (every address, prefix,
 *      name and number checked; errors are INVALID_ARGUMENT naming the field);
 *   2. plan: the spec against a snapshot of the guest (ka_net_state): links
 *      resolved by MAC or name, name clashes, MTU bounds, route devices up,
 *      gateways reachable, preferred sources local. Pure functions, unit-tested;
 *   3. apply: the netlink requests, in upstream's order.
 * Only a kernel error in stage 3 can leave a change half made (see each apply
 * function); the error then names the step that failed. */
#ifndef KA_NET_NETCONF_H
#define KA_NET_NETCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "net/inet.h"
#include "net/netlink.h"
#include "net/rtnl.h"

/* Request bounds, checked before anything is allocated. */
#define KA_NET_MAX_IFACE_ADDRS 256
#define KA_NET_MAX_REQ_ROUTES 1024
#define KA_NET_MAX_REQ_NEIGHS 1024

/* The protocol's IPFamily (v4 = 0, v6 = 1) as an address family hint. v4 is also
 * proto3's "not set", so it becomes AF_UNSPEC: the address text decides, and
 * IPv4 is assumed only when there is no text at all (a default route without
 * gateway). v6 is taken at its word. -1 for any other value. */
int ka_net_family_hint(int proto_family);

struct ka_iface_spec {
    uint8_t mac[KA_MAC_LEN];
    char name[KA_IFNAMSIZ]; /* "" keeps the link's name */
    uint32_t mtu;           /* 0 keeps the link's MTU */
    bool noarp;             /* raw_flags has IFF_NOARP */
    struct ka_inet *addrs;
    size_t naddrs;
};

/* hwaddr, name, mtu and raw_flags of the request; naddrs is how many addresses
 * will follow (checked against KA_NET_MAX_IFACE_ADDRS). */
int ka_iface_spec_init(struct ka_iface_spec *s, const char *hwaddr, const char *name, uint64_t mtu,
                       uint32_t raw_flags, size_t naddrs, struct ka_error *err);
/* One IPAddress: address text and mask (prefix length text). A repeated address
 * is refused (the kernel would refuse the second half-way). */
int ka_iface_spec_add_addr(struct ka_iface_spec *s, int family_hint, const char *address,
                           const char *mask, struct ka_error *err);
void ka_iface_spec_free(struct ka_iface_spec *s);

struct ka_iface_plan {
    const struct ka_link *link;   /* the link with the MAC */
    const struct ka_link *other;  /* another link that has the wanted name, or NULL */
    char other_temp[KA_IFNAMSIZ]; /* the name it gets meanwhile: "<name>_temp" */
};

int ka_net_plan_interface(const struct ka_net_state *st, const struct ka_iface_spec *s,
                          struct ka_iface_plan *plan, struct ka_error *err);

/* UpdateInterface, in upstream's order: link down, its addresses removed, the new
 * ones added, a link holding the wanted name renamed to "<name>_temp", then MTU,
 * name, ARP and up in one request, and the other link given our old name (the
 * two swap names). A kernel error part-way leaves the link down with what was
 * done so far (addresses removed or partly added). */
int ka_net_update_interface(struct ka_nl *nl, const struct ka_iface_spec *s, struct ka_error *err);

/* Interface.devicePath with hwAddr (4.x, upstream's VFIO MAC reconciliation): the
 * NIC found at the PCI path is given the MAC the host asked for, so that the
 * lookup by MAC that follows finds it. Taken down first when up (many drivers
 * refuse a new MAC on a running link), as upstream; the update brings it up.
 * Nothing is changed when it already has the MAC. NOT_FOUND for no such link. */
int ka_net_set_link_mac(struct ka_nl *nl, const char *name, const uint8_t mac[KA_MAC_LEN],
                        struct ka_error *err);

struct ka_route_spec {
    int family;
    struct ka_inet dst;     /* plen 0: default */
    struct ka_inet gateway; /* family 0: none */
    struct ka_inet prefsrc; /* family 0: none */
    struct ka_inet src;     /* a source prefix (RTA_SRC); family 0: none */
    char dev[KA_IFNAMSIZ];
    uint8_t scope;
    uint32_t flags; /* RTNH_F_ONLINK or 0 */
    uint32_t mtu;   /* the route's MTU metric (Route.mtu, 4.x); 0 for none */
};

/* One Route of the request. dest: CIDR or bare address (a host route), "" for
 * the default route. source: a bare address (or one with a /0 or full-length
 * prefix) is the preferred source, what the Go runtime sends (its netlink
 * Route.Src); a shorter prefix is a source prefix, as upstream sends it. */
int ka_route_spec_parse(struct ka_route_spec *r, int family_hint, const char *dest,
                        const char *gateway, const char *device, const char *source, uint32_t scope,
                        uint32_t flags, struct ka_error *err);
/* "10.0.0.0/24 via 10.0.0.1 dev eth0", "default dev eth0": for error messages. */
const char *ka_route_spec_describe(const struct ka_route_spec *r, char *buf, size_t size);

struct ka_routes_plan {
    struct ka_route *add; /* in the order to add them */
    size_t *add_spec;     /* which request entry each one came from */
    size_t nadd;
    const struct ka_route **del; /* into the snapshot */
    size_t ndel;
};

/* The routes UpdateRoutes deletes, as upstream: every IPv4/IPv6 route of any
 * table whose protocol is not kernel and whose output link's name does not
 * contain "lo" (routes without an output link are kept). */
bool ka_net_route_replaced(const struct ka_net_state *st, const struct ka_route *r);

int ka_net_plan_routes(const struct ka_net_state *st, const struct ka_route_spec *specs, size_t n,
                       struct ka_routes_plan *plan, struct ka_error *err);
void ka_routes_plan_free(struct ka_routes_plan *plan);

/* UpdateRoutes: delete the replaced routes, then add the new ones, those without
 * a gateway first (they make the gateways reachable), each list in request
 * order. Like upstream, a route the kernel already has (EEXIST) counts as
 * added. A kernel error part-way leaves the old routes deleted and the new ones
 * added up to the one that failed. */
int ka_net_update_routes(struct ka_nl *nl, const struct ka_route_spec *specs, size_t n,
                         struct ka_error *err);

struct ka_neigh_spec {
    struct ka_inet dst;
    char dev[KA_IFNAMSIZ];
    uint8_t lladdr[KA_HWADDR_MAX];
    uint8_t lladdr_len; /* 0: none */
    uint16_t state;     /* NUD_*; 0 in the request means NUD_PERMANENT */
    uint8_t flags;      /* NTF_* */
};

int ka_neigh_spec_parse(struct ka_neigh_spec *n, int family_hint, const char *address,
                        const char *device, const char *lladdr, int32_t state, int32_t flags,
                        struct ka_error *err);

/* Resolve every device (and check the link-layer address length against it)
 * before adding any neighbour. out gets one ka_neigh per spec. */
int ka_net_plan_neighbors(const struct ka_net_state *st, const struct ka_neigh_spec *specs,
                          size_t n, struct ka_neigh *out, struct ka_error *err);

/* AddARPNeighbors: create-or-replace each entry. A kernel error part-way leaves
 * the entries before it added. */
int ka_net_add_neighbors(struct ka_nl *nl, const struct ka_neigh_spec *specs, size_t n,
                         struct ka_error *err);

#endif
