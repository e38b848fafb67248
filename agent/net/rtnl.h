/* rtnetlink objects (links, addresses, routes, neighbours): parsed from kernel
 * messages into plain structs, and built into request messages. The parsers and
 * builders work on memory only, so the unit tests feed them hand-made messages;
 * ka_net_state_load_* fill a snapshot through a ka_nl socket. */
#ifndef KA_NET_RTNL_H
#define KA_NET_RTNL_H

#include <linux/netlink.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "net/inet.h"
#include "net/netlink.h"

#define KA_LINK_KIND_MAX 32

/* A snapshot bigger than this is refused (RESOURCE_EXHAUSTED) rather than
 * allocated: it bounds the agent's memory and keeps a listing under the 4 MiB
 * ttrpc frame. */
#define KA_NET_MAX_LINKS 2048
#define KA_NET_MAX_ADDRS 8192
#define KA_NET_MAX_ROUTES 16384

/* Every request message we build fits in this. */
#define KA_RTNL_MSG_MAX 512

struct ka_link {
    int index;
    char name[KA_IFNAMSIZ];
    unsigned flags; /* IFF_* */
    uint8_t hwaddr[KA_HWADDR_MAX];
    uint8_t hwaddr_len;
    uint32_t mtu, min_mtu, max_mtu; /* 0 = not reported */
    char kind[KA_LINK_KIND_MAX];    /* IFLA_INFO_KIND, "" for none */
};

struct ka_ifaddr {
    int ifindex;
    struct ka_inet local;   /* the link's own address (IFA_LOCAL, else IFA_ADDRESS) */
    struct ka_inet address; /* IFA_ADDRESS: the peer on point-to-point links */
    uint32_t flags;         /* IFA_F_* */
    uint8_t scope;
};

struct ka_route {
    uint8_t family;
    uint8_t tos, protocol, scope, type;
    uint32_t table;         /* RTA_TABLE, else rtm_table */
    uint32_t flags;         /* rtm_flags */
    struct ka_inet dst;     /* always family-set; plen = rtm_dst_len (0 = default) */
    struct ka_inet src;     /* RTA_SRC, plen = rtm_src_len; family 0 when absent */
    struct ka_inet gateway; /* family 0 when absent */
    struct ka_inet prefsrc; /* family 0 when absent */
    int oif;                /* 0 when absent (multipath, blackhole...) */
    uint32_t priority;
    bool has_priority;
    uint32_t mtu; /* RTA_METRICS' RTAX_MTU; 0 when absent (added on RTM_NEWROUTE only) */
};

/* Parse one dump answer. 0 filled, 1 not of that kind (or a family we skip),
 * -1 malformed. */
int ka_rtnl_parse_link(const struct nlmsghdr *nlh, struct ka_link *out);
int ka_rtnl_parse_addr(const struct nlmsghdr *nlh, struct ka_ifaddr *out);
int ka_rtnl_parse_route(const struct nlmsghdr *nlh, struct ka_route *out);

/* Request builders: buf holds KA_RTNL_MSG_MAX bytes; the returned header is in buf.
 * Flags beyond NLM_F_REQUEST|NLM_F_ACK (which ka_nl_request adds) are set here. */
struct nlmsghdr *ka_rtnl_dump_request(void *buf, uint16_t type, uint8_t family);

struct ka_link_change {
    int index;
    const char *name;      /* NULL: keep */
    uint32_t mtu;          /* 0: keep */
    unsigned flags;        /* ifi_flags ... */
    unsigned change;       /* ... and which of them to apply (ifi_change) */
    const uint8_t *hwaddr; /* IFLA_ADDRESS of hwaddr_len bytes; NULL: keep */
    size_t hwaddr_len;
};
struct nlmsghdr *ka_rtnl_link_change(void *buf, const struct ka_link_change *c);

/* RTM_NEWADDR (create, exclusive) or RTM_DELADDR. For IPv4 the local address is
 * also the address, and the broadcast is the prefix's last address when the
 * prefix is shorter than /31 (what `ip addr add A/N brd +` does). */
struct nlmsghdr *ka_rtnl_addr_new(void *buf, int ifindex, const struct ka_inet *a);
struct nlmsghdr *ka_rtnl_addr_del(void *buf, const struct ka_ifaddr *a);

/* RTM_NEWROUTE (create, exclusive) of r as given, or RTM_DELROUTE naming a route
 * from a dump precisely enough that the kernel deletes that one. */
struct nlmsghdr *ka_rtnl_route_new(void *buf, const struct ka_route *r);
struct nlmsghdr *ka_rtnl_route_del(void *buf, const struct ka_route *r);

struct ka_neigh {
    struct ka_inet dst;
    int ifindex;
    uint8_t lladdr[KA_HWADDR_MAX];
    uint8_t lladdr_len; /* 0: none */
    uint16_t state;     /* NUD_* */
    uint8_t flags;      /* NTF_* */
};
/* RTM_NEWNEIGH with NLM_F_CREATE|NLM_F_REPLACE. */
struct nlmsghdr *ka_rtnl_neigh_new(void *buf, const struct ka_neigh *n);

/* What the guest has: links, their addresses, the routes of every table. */
struct ka_net_state {
    struct ka_link *links;
    size_t nlinks;
    struct ka_ifaddr *addrs;
    size_t naddrs;
    struct ka_route *routes;
    size_t nroutes;
};

int ka_net_state_load_links(struct ka_nl *nl, struct ka_net_state *st, struct ka_error *err);
int ka_net_state_load_addrs(struct ka_nl *nl, struct ka_net_state *st, struct ka_error *err);
/* IPv4 routes, then IPv6 (the order ListRoutes answers in). */
int ka_net_state_load_routes(struct ka_nl *nl, struct ka_net_state *st, struct ka_error *err);
/* All three. */
int ka_net_state_load(struct ka_nl *nl, struct ka_net_state *st, struct ka_error *err);
void ka_net_state_free(struct ka_net_state *st);

static inline void ka_net_state_freep(struct ka_net_state *st)
{
    ka_net_state_free(st);
}
#define cleanup_net_state __attribute__((cleanup(ka_net_state_freep)))

const struct ka_link *ka_net_link_by_index(const struct ka_net_state *st, int index);
const struct ka_link *ka_net_link_by_name(const struct ka_net_state *st, const char *name);

#endif
