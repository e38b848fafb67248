#include "net/rtnl.h"
#include "core/util.h"

#include <errno.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <string.h>

/* Attribute types above this are not looked at (and not stored). */
#define ATTR_TAB 128

static int collect(const struct nlattr *a, void *data)
{
    const struct nlattr **tb = data;
    uint16_t type = mnl_attr_get_type(a);
    if (type < ATTR_TAB)
        tb[type] = a;
    return MNL_CB_OK;
}

static bool attr_u32(const struct nlattr *a, uint32_t *out)
{
    if (!a || mnl_attr_validate(a, MNL_TYPE_U32) < 0)
        return false;
    *out = mnl_attr_get_u32(a);
    return true;
}

/* A NUL-terminated string attribute copied into out (size bytes). -1 if too long. */
static int attr_str(const struct nlattr *a, char *out, size_t size)
{
    if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
        return -1;
    const char *s = mnl_attr_get_str(a);
    size_t len = strnlen(s, mnl_attr_get_payload_len(a));
    if (len >= size)
        return -1;
    memcpy(out, s, len + 1);
    return 0;
}

static int attr_inet(const struct nlattr *a, int family, unsigned plen, struct ka_inet *out)
{
    return ka_inet_from_bytes(out, family, mnl_attr_get_payload(a), mnl_attr_get_payload_len(a),
                              plen);
}

int ka_rtnl_parse_link(const struct nlmsghdr *nlh, struct ka_link *out)
{
    if (nlh->nlmsg_type != RTM_NEWLINK)
        return 1;
    if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct ifinfomsg))
        return -1;
    const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
    const struct nlattr *tb[ATTR_TAB] = {0};
    if (mnl_attr_parse(nlh, sizeof(*ifi), collect, tb) < 0)
        return -1;
    memset(out, 0, sizeof(*out));
    out->index = ifi->ifi_index;
    out->flags = ifi->ifi_flags;
    if (!tb[IFLA_IFNAME] || attr_str(tb[IFLA_IFNAME], out->name, sizeof(out->name)) < 0)
        return -1;
    if (tb[IFLA_ADDRESS]) {
        uint16_t len = mnl_attr_get_payload_len(tb[IFLA_ADDRESS]);
        if (len > KA_HWADDR_MAX)
            return -1;
        memcpy(out->hwaddr, mnl_attr_get_payload(tb[IFLA_ADDRESS]), len);
        out->hwaddr_len = (uint8_t)len;
    }
    attr_u32(tb[IFLA_MTU], &out->mtu);
    attr_u32(tb[IFLA_MIN_MTU], &out->min_mtu);
    attr_u32(tb[IFLA_MAX_MTU], &out->max_mtu);
    if (tb[IFLA_LINKINFO]) {
        const struct nlattr *info[ATTR_TAB] = {0};
        if (mnl_attr_validate(tb[IFLA_LINKINFO], MNL_TYPE_NESTED) < 0 ||
            mnl_attr_parse_nested(tb[IFLA_LINKINFO], collect, info) < 0)
            return -1;
        /* An odd kind name is no reason to fail a listing: leave it empty. */
        if (info[IFLA_INFO_KIND] &&
            attr_str(info[IFLA_INFO_KIND], out->kind, sizeof(out->kind)) < 0)
            out->kind[0] = '\0';
    }
    return 0;
}

int ka_rtnl_parse_addr(const struct nlmsghdr *nlh, struct ka_ifaddr *out)
{
    if (nlh->nlmsg_type != RTM_NEWADDR)
        return 1;
    if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct ifaddrmsg))
        return -1;
    const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
    if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
        return 1;
    const struct nlattr *tb[ATTR_TAB] = {0};
    if (mnl_attr_parse(nlh, sizeof(*ifa), collect, tb) < 0)
        return -1;
    memset(out, 0, sizeof(*out));
    out->ifindex = (int)ifa->ifa_index;
    out->flags = ifa->ifa_flags;
    out->scope = ifa->ifa_scope;
    attr_u32(tb[IFA_FLAGS], &out->flags); /* the full 32 bits, when given */
    if (tb[IFA_ADDRESS] &&
        attr_inet(tb[IFA_ADDRESS], ifa->ifa_family, ifa->ifa_prefixlen, &out->address) < 0)
        return -1;
    if (tb[IFA_LOCAL]) {
        if (attr_inet(tb[IFA_LOCAL], ifa->ifa_family, ifa->ifa_prefixlen, &out->local) < 0)
            return -1;
    } else {
        out->local = out->address;
    }
    return out->local.family ? 0 : -1;
}

int ka_rtnl_parse_route(const struct nlmsghdr *nlh, struct ka_route *out)
{
    if (nlh->nlmsg_type != RTM_NEWROUTE)
        return 1;
    if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct rtmsg))
        return -1;
    const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
    int family = rtm->rtm_family;
    if (family != AF_INET && family != AF_INET6)
        return 1;
    if (rtm->rtm_dst_len > ka_inet_maxlen(family) || rtm->rtm_src_len > ka_inet_maxlen(family))
        return -1;
    const struct nlattr *tb[ATTR_TAB] = {0};
    if (mnl_attr_parse(nlh, sizeof(*rtm), collect, tb) < 0)
        return -1;
    memset(out, 0, sizeof(*out));
    out->family = (uint8_t)family;
    out->tos = rtm->rtm_tos;
    out->protocol = rtm->rtm_protocol;
    out->scope = rtm->rtm_scope;
    out->type = rtm->rtm_type;
    out->flags = rtm->rtm_flags;
    out->table = rtm->rtm_table;
    attr_u32(tb[RTA_TABLE], &out->table);
    out->dst.family = (uint8_t)family;
    out->dst.plen = rtm->rtm_dst_len;
    if (tb[RTA_DST] && attr_inet(tb[RTA_DST], family, rtm->rtm_dst_len, &out->dst) < 0)
        return -1;
    if (tb[RTA_SRC] && attr_inet(tb[RTA_SRC], family, rtm->rtm_src_len, &out->src) < 0)
        return -1;
    if (tb[RTA_GATEWAY] &&
        attr_inet(tb[RTA_GATEWAY], family, ka_inet_maxlen(family), &out->gateway) < 0)
        return -1;
    if (tb[RTA_PREFSRC] &&
        attr_inet(tb[RTA_PREFSRC], family, ka_inet_maxlen(family), &out->prefsrc) < 0)
        return -1;
    uint32_t oif;
    if (attr_u32(tb[RTA_OIF], &oif))
        out->oif = (int)oif;
    out->has_priority = attr_u32(tb[RTA_PRIORITY], &out->priority);
    if (tb[RTA_METRICS]) {
        /* Nested RTAX_* attributes; a malformed nest is refused as a whole. */
        if (mnl_attr_validate(tb[RTA_METRICS], MNL_TYPE_NESTED) < 0)
            return -1;
        const struct nlattr *m;
        mnl_attr_for_each_nested(m, tb[RTA_METRICS])
        {
            if (mnl_attr_get_type(m) == RTAX_MTU && !attr_u32(m, &out->mtu))
                return -1;
        }
    }
    return 0;
}

static struct nlmsghdr *put_header(void *buf, uint16_t type, uint16_t flags)
{
    memset(buf, 0, KA_RTNL_MSG_MAX);
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = flags;
    return nlh;
}

static void put_inet(struct nlmsghdr *nlh, uint16_t type, const struct ka_inet *a)
{
    mnl_attr_put(nlh, type, ka_inet_size(a->family), a->addr);
}

struct nlmsghdr *ka_rtnl_dump_request(void *buf, uint16_t type, uint8_t family)
{
    struct nlmsghdr *nlh = put_header(buf, type, 0);
    switch (type) {
    case RTM_GETLINK: {
        struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
        ifi->ifi_family = family;
        break;
    }
    case RTM_GETADDR: {
        struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
        ifa->ifa_family = family;
        break;
    }
    case RTM_GETROUTE: {
        struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
        rtm->rtm_family = family;
        break;
    }
    default: {
        struct ndmsg *nd = mnl_nlmsg_put_extra_header(nlh, sizeof(*nd));
        nd->ndm_family = family;
    }
    }
    return nlh;
}

struct nlmsghdr *ka_rtnl_link_change(void *buf, const struct ka_link_change *c)
{
    struct nlmsghdr *nlh = put_header(buf, RTM_NEWLINK, 0);
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = c->index;
    ifi->ifi_flags = c->flags;
    ifi->ifi_change = c->change;
    if (c->name)
        mnl_attr_put_strz(nlh, IFLA_IFNAME, c->name);
    if (c->mtu)
        mnl_attr_put_u32(nlh, IFLA_MTU, c->mtu);
    if (c->hwaddr)
        mnl_attr_put(nlh, IFLA_ADDRESS, c->hwaddr_len, c->hwaddr);
    return nlh;
}

struct nlmsghdr *ka_rtnl_addr_new(void *buf, int ifindex, const struct ka_inet *a)
{
    struct nlmsghdr *nlh = put_header(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
    ifa->ifa_family = a->family;
    ifa->ifa_prefixlen = a->plen;
    ifa->ifa_index = (unsigned)ifindex;
    put_inet(nlh, IFA_LOCAL, a);
    put_inet(nlh, IFA_ADDRESS, a);
    if (a->family == AF_INET && a->plen < 31) {
        struct ka_inet brd = *a;
        for (unsigned bit = a->plen; bit < 32; bit++)
            brd.addr[bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
        put_inet(nlh, IFA_BROADCAST, &brd);
    }
    return nlh;
}

struct nlmsghdr *ka_rtnl_addr_del(void *buf, const struct ka_ifaddr *a)
{
    struct nlmsghdr *nlh = put_header(buf, RTM_DELADDR, 0);
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
    ifa->ifa_family = a->local.family;
    ifa->ifa_prefixlen = a->local.plen;
    ifa->ifa_index = (unsigned)a->ifindex;
    put_inet(nlh, IFA_LOCAL, &a->local);
    if (a->address.family)
        put_inet(nlh, IFA_ADDRESS, &a->address);
    return nlh;
}

static struct nlmsghdr *route_msg(void *buf, uint16_t type, uint16_t flags,
                                  const struct ka_route *r)
{
    struct nlmsghdr *nlh = put_header(buf, type, flags);
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
    rtm->rtm_family = r->family;
    rtm->rtm_dst_len = r->dst.plen;
    rtm->rtm_src_len = r->src.family ? r->src.plen : 0;
    rtm->rtm_tos = r->tos;
    rtm->rtm_table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC;
    rtm->rtm_protocol = r->protocol;
    rtm->rtm_scope = r->scope;
    rtm->rtm_type = r->type;
    rtm->rtm_flags = r->flags & RTNH_F_ONLINK;
    mnl_attr_put_u32(nlh, RTA_TABLE, r->table);
    if (r->dst.plen > 0)
        put_inet(nlh, RTA_DST, &r->dst);
    if (r->src.family)
        put_inet(nlh, RTA_SRC, &r->src);
    if (r->gateway.family)
        put_inet(nlh, RTA_GATEWAY, &r->gateway);
    if (r->prefsrc.family)
        put_inet(nlh, RTA_PREFSRC, &r->prefsrc);
    if (r->oif)
        mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)r->oif);
    if (r->has_priority)
        mnl_attr_put_u32(nlh, RTA_PRIORITY, r->priority);
    /* Only when adding: a delete matches routes by key, not by metrics. */
    if (r->mtu && type == RTM_NEWROUTE) {
        struct nlattr *metrics = mnl_attr_nest_start(nlh, RTA_METRICS);
        mnl_attr_put_u32(nlh, RTAX_MTU, r->mtu);
        mnl_attr_nest_end(nlh, metrics);
    }
    return nlh;
}

struct nlmsghdr *ka_rtnl_route_new(void *buf, const struct ka_route *r)
{
    return route_msg(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, r);
}

struct nlmsghdr *ka_rtnl_route_del(void *buf, const struct ka_route *r)
{
    return route_msg(buf, RTM_DELROUTE, 0, r);
}

struct nlmsghdr *ka_rtnl_neigh_new(void *buf, const struct ka_neigh *n)
{
    struct nlmsghdr *nlh = put_header(buf, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
    struct ndmsg *nd = mnl_nlmsg_put_extra_header(nlh, sizeof(*nd));
    nd->ndm_family = n->dst.family;
    nd->ndm_ifindex = n->ifindex;
    nd->ndm_state = n->state;
    nd->ndm_flags = n->flags;
    put_inet(nlh, NDA_DST, &n->dst);
    if (n->lladdr_len)
        mnl_attr_put(nlh, NDA_LLADDR, n->lladdr_len, n->lladdr);
    return nlh;
}

/* Growing arrays, bounded. */
static void *grow(void *arr, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return arr;
    *cap = *cap ? *cap * 2 : 16;
    return ka_xrealloc(arr, *cap * elem);
}

struct collector {
    struct ka_net_state *st;
    size_t cap;
};

static int too_many(struct ka_error *err, const char *what, size_t max)
{
    return ka_error_status_set(err, KA_STATUS_RESOURCE_EXHAUSTED, "the guest has more than %zu %s",
                               max, what);
}

static int on_link(const struct nlmsghdr *nlh, void *data, struct ka_error *err)
{
    struct collector *c = data;
    struct ka_link l;
    int rc = ka_rtnl_parse_link(nlh, &l);
    if (rc < 0)
        return ka_error_set(err, EBADMSG, "malformed link message from the kernel");
    if (rc > 0)
        return 0;
    if (c->st->nlinks == KA_NET_MAX_LINKS)
        return too_many(err, "links", KA_NET_MAX_LINKS);
    c->st->links = grow(c->st->links, c->st->nlinks, &c->cap, sizeof(l));
    c->st->links[c->st->nlinks++] = l;
    return 0;
}

static void reset_links(void *data)
{
    ((struct collector *)data)->st->nlinks = 0;
}

static int on_addr(const struct nlmsghdr *nlh, void *data, struct ka_error *err)
{
    struct collector *c = data;
    struct ka_ifaddr a;
    int rc = ka_rtnl_parse_addr(nlh, &a);
    if (rc < 0)
        return ka_error_set(err, EBADMSG, "malformed address message from the kernel");
    if (rc > 0)
        return 0;
    if (c->st->naddrs == KA_NET_MAX_ADDRS)
        return too_many(err, "addresses", KA_NET_MAX_ADDRS);
    c->st->addrs = grow(c->st->addrs, c->st->naddrs, &c->cap, sizeof(a));
    c->st->addrs[c->st->naddrs++] = a;
    return 0;
}

static void reset_addrs(void *data)
{
    ((struct collector *)data)->st->naddrs = 0;
}

struct route_collector {
    struct collector c;
    size_t base; /* routes of earlier families, kept over a redo */
};

static int on_route(const struct nlmsghdr *nlh, void *data, struct ka_error *err)
{
    struct collector *c = data;
    struct ka_route r;
    int rc = ka_rtnl_parse_route(nlh, &r);
    if (rc < 0)
        return ka_error_set(err, EBADMSG, "malformed route message from the kernel");
    if (rc > 0)
        return 0;
    if (c->st->nroutes == KA_NET_MAX_ROUTES)
        return too_many(err, "routes", KA_NET_MAX_ROUTES);
    c->st->routes = grow(c->st->routes, c->st->nroutes, &c->cap, sizeof(r));
    c->st->routes[c->st->nroutes++] = r;
    return 0;
}

static void reset_routes(void *data)
{
    struct route_collector *rc = data;
    rc->c.st->nroutes = rc->base;
}

int ka_net_state_load_links(struct ka_nl *nl, struct ka_net_state *st, struct ka_error *err)
{
    char buf[KA_RTNL_MSG_MAX];
    struct collector c = {.st = st};
    free(st->links);
    st->links = NULL;
    st->nlinks = 0;
    if (ka_nl_dump(nl, ka_rtnl_dump_request(buf, RTM_GETLINK, AF_UNSPEC), on_link, reset_links, &c,
                   err) < 0)
        return ka_error_wrap(err, "list links");
    return 0;
}

int ka_net_state_load_addrs(struct ka_nl *nl, struct ka_net_state *st, struct ka_error *err)
{
    char buf[KA_RTNL_MSG_MAX];
    struct collector c = {.st = st};
    free(st->addrs);
    st->addrs = NULL;
    st->naddrs = 0;
    if (ka_nl_dump(nl, ka_rtnl_dump_request(buf, RTM_GETADDR, AF_UNSPEC), on_addr, reset_addrs, &c,
                   err) < 0)
        return ka_error_wrap(err, "list addresses");
    return 0;
}

int ka_net_state_load_routes(struct ka_nl *nl, struct ka_net_state *st, struct ka_error *err)
{
    static const uint8_t families[] = {AF_INET, AF_INET6};
    char buf[KA_RTNL_MSG_MAX];
    struct route_collector rc = {.c = {.st = st}};
    free(st->routes);
    st->routes = NULL;
    st->nroutes = 0;
    /* One family at a time: a second dump on the socket while the first is still
     * running would fail with EBUSY. */
    for (size_t i = 0; i < KA_ARRAY_SIZE(families); i++) {
        rc.base = st->nroutes;
        if (ka_nl_dump(nl, ka_rtnl_dump_request(buf, RTM_GETROUTE, families[i]), on_route,
                       reset_routes, &rc, err) < 0)
            return ka_error_wrap(err, "list IPv%c routes", families[i] == AF_INET ? '4' : '6');
    }
    return 0;
}

int ka_net_state_load(struct ka_nl *nl, struct ka_net_state *st, struct ka_error *err)
{
    if (ka_net_state_load_links(nl, st, err) < 0 || ka_net_state_load_addrs(nl, st, err) < 0 ||
        ka_net_state_load_routes(nl, st, err) < 0)
        return -1;
    return 0;
}

void ka_net_state_free(struct ka_net_state *st)
{
    free(st->links);
    free(st->addrs);
    free(st->routes);
    memset(st, 0, sizeof(*st));
}

const struct ka_link *ka_net_link_by_index(const struct ka_net_state *st, int index)
{
    for (size_t i = 0; i < st->nlinks; i++)
        if (st->links[i].index == index)
            return &st->links[i];
    return NULL;
}

const struct ka_link *ka_net_link_by_name(const struct ka_net_state *st, const char *name)
{
    for (size_t i = 0; i < st->nlinks; i++)
        if (strcmp(st->links[i].name, name) == 0)
            return &st->links[i];
    return NULL;
}
