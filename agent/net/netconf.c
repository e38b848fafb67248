#include "net/netconf.h"
#include "core/util.h"

#include <errno.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* How much of a host-supplied string goes into an error message. */
#define SHOW "%.64s"

static int invalid(struct ka_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int invalid(struct ka_error *err, const char *fmt, ...)
{
    char msg[KA_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "%s", msg);
}

static const char *family_name(int family)
{
    return family == AF_INET6 ? "IPv6" : "IPv4";
}

int ka_net_family_hint(int proto_family)
{
    switch (proto_family) {
    case 0:
        return AF_UNSPEC;
    case 1:
        return AF_INET6;
    default:
        return -1;
    }
}

/* An address (or prefix, with allow_prefix) of the hinted family. */
static int parse_inet(const char *what, const char *text, int family_hint, bool allow_prefix,
                      struct ka_inet *out, struct ka_error *err)
{
    if (ka_inet_parse(text, family_hint, allow_prefix, out) == 0)
        return 0;
    struct ka_inet other;
    if (family_hint == AF_INET6 && ka_inet_parse(text, AF_INET, allow_prefix, &other) == 0)
        return invalid(err, "%s '" SHOW "' is IPv4 but the family says IPv6", what, text);
    return invalid(err, "%s '" SHOW "' is not an IP %s", what, text,
                   allow_prefix ? "address or prefix" : "address");
}

int ka_iface_spec_init(struct ka_iface_spec *s, const char *hwaddr, const char *name, uint64_t mtu,
                       uint32_t raw_flags, size_t naddrs, struct ka_error *err)
{
    memset(s, 0, sizeof(*s));
    if (!hwaddr[0])
        return invalid(err, "interface has no hwAddr: the link is found by its MAC address");
    if (ka_mac_parse(hwaddr, s->mac) < 0)
        return invalid(err, "hwAddr '" SHOW "' is not a MAC address", hwaddr);
    if (name[0]) {
        if (!ka_ifname_valid(name))
            return invalid(err,
                           "name '" SHOW "' is not a valid link name (1-15 bytes, no '/', "
                           "':' or spaces)",
                           name);
        snprintf(s->name, sizeof(s->name), "%s", name);
    }
    if (mtu > UINT32_MAX)
        return invalid(err, "mtu %llu is out of range", (unsigned long long)mtu);
    s->mtu = (uint32_t)mtu;
    s->noarp = (raw_flags & IFF_NOARP) != 0;
    if (naddrs > KA_NET_MAX_IFACE_ADDRS)
        return invalid(err, "%zu IP addresses for one interface (at most %d)", naddrs,
                       KA_NET_MAX_IFACE_ADDRS);
    s->addrs = naddrs ? ka_xcalloc(naddrs, sizeof(*s->addrs)) : NULL;
    return 0;
}

int ka_iface_spec_add_addr(struct ka_iface_spec *s, int family_hint, const char *address,
                           const char *mask, struct ka_error *err)
{
    struct ka_inet a;
    if (parse_inet("address", address, family_hint, false, &a, err) < 0)
        return -1;
    if (ka_inet_parse_plen(mask, a.family, &a.plen) < 0)
        return invalid(err, "mask '" SHOW "' of %s is not an %s prefix length", mask, address,
                       family_name(a.family));
    for (size_t i = 0; i < s->naddrs; i++)
        if (ka_inet_same_addr(&s->addrs[i], &a))
            return invalid(err, "address " SHOW " is listed twice", address);
    s->addrs[s->naddrs++] = a;
    return 0;
}

void ka_iface_spec_free(struct ka_iface_spec *s)
{
    free(s->addrs);
    s->addrs = NULL;
    s->naddrs = 0;
}

int ka_net_plan_interface(const struct ka_net_state *st, const struct ka_iface_spec *s,
                          struct ka_iface_plan *plan, struct ka_error *err)
{
    char mac[KA_HWADDR_STRLEN];
    ka_hwaddr_format(s->mac, KA_MAC_LEN, mac, sizeof(mac));
    memset(plan, 0, sizeof(*plan));
    /* Upstream takes the first link in the kernel's order with that address. */
    for (size_t i = 0; i < st->nlinks && !plan->link; i++)
        if (st->links[i].hwaddr_len == KA_MAC_LEN &&
            memcmp(st->links[i].hwaddr, s->mac, KA_MAC_LEN) == 0)
            plan->link = &st->links[i];
    if (!plan->link)
        return ka_error_status_set(err, KA_STATUS_NOT_FOUND, "no link with MAC address %s", mac);
    const struct ka_link *l = plan->link;
    if (s->mtu && ((l->min_mtu && s->mtu < l->min_mtu) || (l->max_mtu && s->mtu > l->max_mtu)))
        return invalid(err, "mtu %u is outside %s's range %u-%u", s->mtu, l->name, l->min_mtu,
                       l->max_mtu);
    if (s->name[0] && strcmp(s->name, l->name) != 0) {
        plan->other = ka_net_link_by_name(st, s->name);
        if (plan->other) {
            int n = snprintf(plan->other_temp, sizeof(plan->other_temp), "%s_temp", s->name);
            if (n < 0 || (size_t)n >= sizeof(plan->other_temp))
                return invalid(err,
                               "link %s already has the name %s and cannot be moved aside: "
                               "%s_temp is longer than 15 bytes",
                               plan->other->name, s->name, s->name);
            if (ka_net_link_by_name(st, plan->other_temp))
                return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                           "link %s already has the name %s, and %s (where it "
                                           "would move aside) is taken too",
                                           s->name, s->name, plan->other_temp);
        }
    }
    return 0;
}

/* A request whose failure with errno `tolerated` counts as success. */
static int request_unless(struct ka_nl *nl, struct nlmsghdr *req, int tolerated,
                          struct ka_error *err)
{
    int rc = ka_nl_request(nl, req, err);
    return rc < 0 && err->errnum == tolerated ? 0 : rc;
}

static int link_set(struct ka_nl *nl, const struct ka_link_change *c, struct ka_error *err)
{
    char buf[KA_RTNL_MSG_MAX];
    return ka_nl_request(nl, ka_rtnl_link_change(buf, c), err);
}

/* Rename a link that may be up. Kernels before 6.2 rename only links that are
 * down (EBUSY); there, take it down for the rename and bring it back up. Down
 * costs the link its IPv6 addresses, so newer kernels are spared that. */
static int rename_link(struct ka_nl *nl, const struct ka_link *l, const char *name,
                       struct ka_error *err)
{
    const struct ka_link_change rename = {.index = l->index, .name = name};
    int rc = link_set(nl, &rename, err);
    if (rc == 0)
        return 0;
    if (!(l->flags & IFF_UP) || err->errnum != EBUSY)
        return ka_error_wrap(err, "rename link %s to %s", l->name, name);
    if (link_set(nl, &(struct ka_link_change){.index = l->index, .change = IFF_UP}, err) < 0)
        return ka_error_wrap(err, "take link %s down to rename it", l->name);
    if (link_set(nl, &rename, err) < 0)
        return ka_error_wrap(err, "rename link %s to %s", l->name, name);
    if (link_set(nl, &(struct ka_link_change){.index = l->index, .flags = IFF_UP, .change = IFF_UP},
                 err) < 0)
        return ka_error_wrap(err, "bring link %s up again", name);
    return 0;
}

static int apply_interface(struct ka_nl *nl, const struct ka_iface_spec *s, struct ka_net_state *st,
                           const struct ka_iface_plan *plan, struct ka_error *err)
{
    char buf[KA_RTNL_MSG_MAX], text[KA_INET_STRLEN];
    const struct ka_link *l = plan->link;
    int index = l->index;
    if ((l->flags & IFF_UP) &&
        link_set(nl, &(struct ka_link_change){.index = index, .change = IFF_UP}, err) < 0)
        return ka_error_wrap(err, "take link %s down", l->name);
    /* Read the addresses only now: taking the link down has dropped its IPv6 ones. */
    if (ka_net_state_load_addrs(nl, st, err) < 0)
        return -1;
    for (size_t i = 0; i < st->naddrs; i++) {
        const struct ka_ifaddr *a = &st->addrs[i];
        if (a->ifindex != index)
            continue;
        /* Removing an IPv4 primary address takes its secondaries with it. */
        if (request_unless(nl, ka_rtnl_addr_del(buf, a), EADDRNOTAVAIL, err) < 0)
            return ka_error_wrap(err, "remove address %s from %s",
                                 ka_inet_format(&a->local, true, text, sizeof(text)), l->name);
    }
    for (size_t i = 0; i < s->naddrs; i++)
        if (ka_nl_request(nl, ka_rtnl_addr_new(buf, index, &s->addrs[i]), err) < 0)
            return ka_error_wrap(err, "add address %s to %s",
                                 ka_inet_format(&s->addrs[i], true, text, sizeof(text)), l->name);
    if (plan->other && rename_link(nl, plan->other, plan->other_temp, err) < 0)
        return ka_error_wrap(err, "make room for the name %s", s->name);
    bool rename = s->name[0] && strcmp(s->name, l->name) != 0;
    struct ka_link_change c = {
        .index = index,
        .name = rename ? s->name : NULL,
        .mtu = s->mtu,
        .flags = IFF_UP | (s->noarp ? IFF_NOARP : 0),
        .change = IFF_UP | IFF_NOARP,
    };
    if (link_set(nl, &c, err) < 0)
        return ka_error_wrap(err, "set link %s (name %s, mtu %u, arp %s) up", l->name,
                             rename ? s->name : l->name, s->mtu, s->noarp ? "off" : "on");
    if (plan->other) {
        struct ka_link moved = *plan->other;
        snprintf(moved.name, sizeof(moved.name), "%s", plan->other_temp);
        if (rename_link(nl, &moved, l->name, err) < 0)
            return ka_error_wrap(err, "give %s's old name to the link that had %s", l->name,
                                 s->name);
    }
    return 0;
}

int ka_net_update_interface(struct ka_nl *nl, const struct ka_iface_spec *s, struct ka_error *err)
{
    struct ka_net_state st = {0};
    struct ka_iface_plan plan;
    int rc = ka_net_state_load_links(nl, &st, err);
    if (rc == 0)
        rc = ka_net_plan_interface(&st, s, &plan, err);
    if (rc == 0)
        rc = apply_interface(nl, s, &st, &plan, err);
    ka_net_state_free(&st);
    return rc < 0 ? -1 : 0;
}

int ka_net_set_link_mac(struct ka_nl *nl, const char *name, const uint8_t mac[KA_MAC_LEN],
                        struct ka_error *err)
{
    cleanup_net_state struct ka_net_state st = {0};
    if (ka_net_state_load_links(nl, &st, err) < 0)
        return -1;
    const struct ka_link *l = ka_net_link_by_name(&st, name);
    if (!l)
        return ka_error_status_set(err, KA_STATUS_NOT_FOUND, "no link named %.32s", name);
    if (l->hwaddr_len == KA_MAC_LEN && memcmp(l->hwaddr, mac, KA_MAC_LEN) == 0)
        return 0;
    if ((l->flags & IFF_UP) &&
        link_set(nl, &(struct ka_link_change){.index = l->index, .change = IFF_UP}, err) < 0)
        return ka_error_wrap(err, "take link %s down", l->name);
    const struct ka_link_change c = {.index = l->index, .hwaddr = mac, .hwaddr_len = KA_MAC_LEN};
    if (link_set(nl, &c, err) < 0)
        return ka_error_wrap(err, "set the MAC of link %s", l->name);
    return 0;
}

int ka_route_spec_parse(struct ka_route_spec *r, int family_hint, const char *dest,
                        const char *gateway, const char *device, const char *source, uint32_t scope,
                        uint32_t flags, struct ka_error *err)
{
    memset(r, 0, sizeof(*r));
    if (dest[0] && parse_inet("dest", dest, family_hint, true, &r->dst, err) < 0)
        return -1;
    if (gateway[0] && parse_inet("gateway", gateway, family_hint, false, &r->gateway, err) < 0)
        return -1;
    struct ka_inet source_net = {0};
    if (source[0] && parse_inet("source", source, family_hint, true, &source_net, err) < 0)
        return -1;
    /* The texts decide the family; they must agree with each other. */
    int family = family_hint == AF_INET6 ? AF_INET6 : 0;
    const struct ka_inet *given[] = {&r->dst, &r->gateway, &source_net};
    for (size_t i = 0; i < KA_ARRAY_SIZE(given); i++) {
        if (!given[i]->family)
            continue;
        if (family && given[i]->family != family)
            return invalid(err, "dest, gateway and source mix IPv4 and IPv6");
        family = given[i]->family;
    }
    r->family = family ? family : AF_INET;
    if (!dest[0]) {
        r->dst.family = (uint8_t)r->family;
        r->dst.plen = 0;
    }
    if (r->family == AF_INET && ka_inet_host_bits_set(&r->dst))
        return invalid(err, "dest '" SHOW "' has bits set past its prefix length", dest);
    if (source_net.family) {
        unsigned full = ka_inet_maxlen(source_net.family);
        if (source_net.plen == 0 || source_net.plen == full) {
            r->prefsrc = source_net;
            r->prefsrc.plen = (uint8_t)full;
        } else {
            r->src = source_net;
        }
    }
    if (!device[0])
        return invalid(err, "no device");
    if (!ka_ifname_valid(device))
        return invalid(err, "device '" SHOW "' is not a valid link name", device);
    snprintf(r->dev, sizeof(r->dev), "%s", device);
    if (scope > 255 || (r->family == AF_INET && scope > RT_SCOPE_HOST))
        return invalid(err, "scope %u is not a valid %s route scope", scope,
                       family_name(r->family));
    r->scope = (uint8_t)scope;
    if (r->family == AF_INET && scope == RT_SCOPE_HOST && r->gateway.family)
        return invalid(err, "a host-scope route cannot have a gateway");
    if (flags & ~(uint32_t)RTNH_F_ONLINK)
        return invalid(err, "flags 0x%x: only RTNH_F_ONLINK (0x%x) is supported", flags,
                       RTNH_F_ONLINK);
    if ((flags & RTNH_F_ONLINK) && !r->gateway.family)
        return invalid(err, "the onlink flag needs a gateway");
    r->flags = flags;
    return 0;
}

const char *ka_route_spec_describe(const struct ka_route_spec *r, char *buf, size_t size)
{
    char dst[KA_INET_STRLEN], gw[KA_INET_STRLEN];
    if (r->dst.plen == 0)
        snprintf(dst, sizeof(dst), "default");
    else
        ka_inet_format(&r->dst, true, dst, sizeof(dst));
    ka_inet_format(&r->gateway, false, gw, sizeof(gw));
    snprintf(buf, size, "%s%s%s dev %s", dst, gw[0] ? " via " : "", gw, r->dev);
    return buf;
}

static bool name_contains_lo(const char *name)
{
    return strstr(name, "lo") != NULL;
}

bool ka_net_route_replaced(const struct ka_net_state *st, const struct ka_route *r)
{
    if (r->protocol == RTPROT_KERNEL || r->oif == 0)
        return false;
    const struct ka_link *l = ka_net_link_by_index(st, r->oif);
    return l && !name_contains_lo(l->name);
}

/* The route the kernel would find for the gateway when it checks a new gateway
 * route: one without a gateway on the same link, in a table the lookup sees
 * (local, main, default). For IPv4 its scope must be above the new route's (at
 * least link scope); for IPv6 a local address cannot be a gateway. */
static bool covers(int family, const struct ka_inet *dst, bool has_gateway, int oif, uint8_t scope,
                   uint8_t type, const struct ka_route_spec *gw_route, int gw_oif)
{
    if (has_gateway || oif != gw_oif || family != gw_route->family ||
        !ka_inet_contains(dst, &gw_route->gateway))
        return false;
    if (family == AF_INET6)
        return type == RTN_UNICAST;
    unsigned need = gw_route->scope + 1u < RT_SCOPE_LINK ? RT_SCOPE_LINK : gw_route->scope + 1u;
    return (type == RTN_UNICAST || type == RTN_LOCAL) && scope >= need;
}

static bool gateway_reachable(const struct ka_net_state *st, const bool *deleted,
                              const struct ka_route_spec *specs, const int *oifs, size_t n,
                              size_t k)
{
    const struct ka_route_spec *r = &specs[k];
    if ((r->flags & RTNH_F_ONLINK) || ka_inet_is_v6_link_local(&r->gateway))
        return true;
    for (size_t i = 0; i < st->nroutes; i++) {
        const struct ka_route *e = &st->routes[i];
        if (deleted[i] || (e->table != RT_TABLE_MAIN && e->table != RT_TABLE_LOCAL &&
                           e->table != RT_TABLE_DEFAULT))
            continue;
        if (covers(e->family, &e->dst, e->gateway.family != 0, e->oif, e->scope, e->type, r,
                   oifs[k]))
            return true;
    }
    for (size_t i = 0; i < n; i++)
        if (covers(specs[i].family, &specs[i].dst, specs[i].gateway.family != 0, oifs[i],
                   specs[i].scope, RTN_UNICAST, r, oifs[k]))
            return true;
    return false;
}

/* The kernel refuses an IPv6 gateway that is one of the guest's own addresses
 * (on any link); IPv4 takes it. */
static bool local_address(const struct ka_net_state *st, const struct ka_inet *a)
{
    for (size_t i = 0; i < st->naddrs; i++)
        if (ka_inet_same_addr(&st->addrs[i].local, a))
            return true;
    return false;
}

/* A preferred source must be an address of the guest (IPv4: any link; IPv6: any
 * link for global ones, this link for link-local ones, and not tentative: the
 * kernel refuses those until duplicate address detection has passed). */
static int check_prefsrc(const struct ka_net_state *st, const struct ka_route_spec *r, int oif,
                         const char *what, struct ka_error *err)
{
    char text[KA_INET_STRLEN];
    ka_inet_format(&r->prefsrc, false, text, sizeof(text));
    for (size_t i = 0; i < st->naddrs; i++) {
        const struct ka_ifaddr *a = &st->addrs[i];
        if (!ka_inet_same_addr(&a->local, &r->prefsrc))
            continue;
        if (r->family == AF_INET6 && a->scope >= RT_SCOPE_LINK && a->ifindex != oif)
            continue;
        if (r->family == AF_INET6 && (a->flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)))
            return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                       "route %s: source %s is still tentative (duplicate "
                                       "address detection has not passed)",
                                       what, text);
        return 0;
    }
    return invalid(err, "route %s: source %s is not an address of this guest", what, text);
}

int ka_net_plan_routes(const struct ka_net_state *st, const struct ka_route_spec *specs, size_t n,
                       struct ka_routes_plan *plan, struct ka_error *err)
{
    char what[128];
    memset(plan, 0, sizeof(*plan));
    if (n > KA_NET_MAX_REQ_ROUTES)
        return invalid(err, "%zu routes (at most %d)", n, KA_NET_MAX_REQ_ROUTES);
    cleanup_free int *oifs = ka_xcalloc(n ? n : 1, sizeof(*oifs));
    cleanup_free bool *deleted = ka_xcalloc(st->nroutes ? st->nroutes : 1, sizeof(*deleted));
    size_t ndel = 0;
    for (size_t i = 0; i < st->nroutes; i++)
        if ((deleted[i] = ka_net_route_replaced(st, &st->routes[i])))
            ndel++;
    for (size_t i = 0; i < n; i++) {
        ka_route_spec_describe(&specs[i], what, sizeof(what));
        const struct ka_link *l = ka_net_link_by_name(st, specs[i].dev);
        if (!l)
            return ka_error_status_set(err, KA_STATUS_NOT_FOUND, "route %s: no link named %s", what,
                                       specs[i].dev);
        if (!(l->flags & IFF_UP))
            return ka_error_status_set(err, KA_STATUS_FAILED_PRECONDITION,
                                       "route %s: link %s is down", what, l->name);
        oifs[i] = l->index;
    }
    for (size_t i = 0; i < n; i++) {
        ka_route_spec_describe(&specs[i], what, sizeof(what));
        if (specs[i].prefsrc.family && check_prefsrc(st, &specs[i], oifs[i], what, err) < 0)
            return -1;
        if (specs[i].family == AF_INET6 && local_address(st, &specs[i].gateway)) {
            char gw[KA_INET_STRLEN];
            return invalid(err, "route %s: gateway %s is an address of this guest", what,
                           ka_inet_format(&specs[i].gateway, false, gw, sizeof(gw)));
        }
        if (specs[i].gateway.family && !gateway_reachable(st, deleted, specs, oifs, n, i)) {
            char gw[KA_INET_STRLEN];
            return invalid(err,
                           "route %s: gateway %s is not reachable on %s (no route without "
                           "a gateway on that link covers it)",
                           what, ka_inet_format(&specs[i].gateway, false, gw, sizeof(gw)),
                           specs[i].dev);
        }
    }
    plan->del = ka_xcalloc(ndel ? ndel : 1, sizeof(*plan->del));
    for (size_t i = 0; i < st->nroutes; i++)
        if (deleted[i])
            plan->del[plan->ndel++] = &st->routes[i];
    plan->add = ka_xcalloc(n ? n : 1, sizeof(*plan->add));
    plan->add_spec = ka_xcalloc(n ? n : 1, sizeof(*plan->add_spec));
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            const struct ka_route_spec *s = &specs[i];
            if ((s->gateway.family != 0) != (pass == 1))
                continue;
            plan->add_spec[plan->nadd] = i;
            plan->add[plan->nadd++] = (struct ka_route){
                .family = (uint8_t)s->family,
                .protocol = RTPROT_BOOT,
                .scope = s->scope,
                .type = RTN_UNICAST,
                .table = RT_TABLE_MAIN,
                .flags = s->flags,
                .mtu = s->mtu,
                .dst = s->dst,
                .src = s->src,
                .gateway = s->gateway,
                .prefsrc = s->prefsrc,
                .oif = oifs[i],
            };
        }
    }
    return 0;
}

void ka_routes_plan_free(struct ka_routes_plan *plan)
{
    free(plan->add);
    free(plan->add_spec);
    free(plan->del);
    memset(plan, 0, sizeof(*plan));
}

static const char *route_text(const struct ka_net_state *st, const struct ka_route *r, char *buf,
                              size_t size)
{
    struct ka_route_spec s = {.family = r->family, .dst = r->dst, .gateway = r->gateway};
    const struct ka_link *l = ka_net_link_by_index(st, r->oif);
    snprintf(s.dev, sizeof(s.dev), "%s", l ? l->name : "?");
    return ka_route_spec_describe(&s, buf, size);
}

int ka_net_update_routes(struct ka_nl *nl, const struct ka_route_spec *specs, size_t n,
                         struct ka_error *err)
{
    char buf[KA_RTNL_MSG_MAX], what[128];
    struct ka_net_state st = {0};
    struct ka_routes_plan plan = {0};
    int rc = ka_net_state_load(nl, &st, err);
    if (rc == 0)
        rc = ka_net_plan_routes(&st, specs, n, &plan, err);
    for (size_t i = 0; rc == 0 && i < plan.ndel; i++) {
        /* ESRCH: gone already, e.g. with the address it belonged to. */
        if (request_unless(nl, ka_rtnl_route_del(buf, plan.del[i]), ESRCH, err) < 0)
            rc = ka_error_wrap(err, "delete route %s",
                               route_text(&st, plan.del[i], what, sizeof(what)));
    }
    for (size_t i = 0; rc == 0 && i < plan.nadd; i++) {
        const struct ka_route_spec *s = &specs[plan.add_spec[i]];
        if (request_unless(nl, ka_rtnl_route_new(buf, &plan.add[i]), EEXIST, err) < 0)
            rc = ka_error_wrap(err, "add route %s", ka_route_spec_describe(s, what, sizeof(what)));
    }
    ka_routes_plan_free(&plan);
    ka_net_state_free(&st);
    return rc < 0 ? -1 : 0;
}

int ka_neigh_spec_parse(struct ka_neigh_spec *n, int family_hint, const char *address,
                        const char *device, const char *lladdr, int32_t state, int32_t flags,
                        struct ka_error *err)
{
    memset(n, 0, sizeof(*n));
    if (!address[0])
        return invalid(err, "no IP address");
    if (parse_inet("address", address, family_hint, false, &n->dst, err) < 0)
        return -1;
    if (!device[0])
        return invalid(err, "no device");
    if (!ka_ifname_valid(device))
        return invalid(err, "device '" SHOW "' is not a valid link name", device);
    snprintf(n->dev, sizeof(n->dev), "%s", device);
    if (lladdr[0]) {
        size_t len;
        if (ka_hwaddr_parse(lladdr, n->lladdr, &len) < 0)
            return invalid(err, "lladdr '" SHOW "' is not a link-layer address", lladdr);
        n->lladdr_len = (uint8_t)len;
    }
    if (state < 0 || state > 0xff)
        return invalid(err, "state %d is not a NUD_* value", state);
    n->state = state ? (uint16_t)state : NUD_PERMANENT;
    if (flags < 0 || flags > 0xff)
        return invalid(err, "flags %d are not NTF_* flags", flags);
    n->flags = (uint8_t)flags;
    return 0;
}

int ka_net_plan_neighbors(const struct ka_net_state *st, const struct ka_neigh_spec *specs,
                          size_t n, struct ka_neigh *out, struct ka_error *err)
{
    char text[KA_INET_STRLEN];
    if (n > KA_NET_MAX_REQ_NEIGHS)
        return invalid(err, "%zu neighbours (at most %d)", n, KA_NET_MAX_REQ_NEIGHS);
    for (size_t i = 0; i < n; i++) {
        const struct ka_neigh_spec *s = &specs[i];
        ka_inet_format(&s->dst, false, text, sizeof(text));
        const struct ka_link *l = ka_net_link_by_name(st, s->dev);
        if (!l)
            return ka_error_status_set(err, KA_STATUS_NOT_FOUND, "neighbour %s: no link named %s",
                                       text, s->dev);
        if (s->lladdr_len && l->hwaddr_len && s->lladdr_len != l->hwaddr_len)
            return invalid(err, "neighbour %s: lladdr has %u bytes but %s's addresses have %u",
                           text, s->lladdr_len, l->name, l->hwaddr_len);
        out[i] = (struct ka_neigh){
            .dst = s->dst,
            .ifindex = l->index,
            .lladdr_len = s->lladdr_len,
            .state = s->state,
            .flags = s->flags,
        };
        memcpy(out[i].lladdr, s->lladdr, s->lladdr_len);
    }
    return 0;
}

int ka_net_add_neighbors(struct ka_nl *nl, const struct ka_neigh_spec *specs, size_t n,
                         struct ka_error *err)
{
    char buf[KA_RTNL_MSG_MAX], text[KA_INET_STRLEN];
    struct ka_net_state st = {0};
    if (n > KA_NET_MAX_REQ_NEIGHS)
        return invalid(err, "%zu neighbours (at most %d)", n, KA_NET_MAX_REQ_NEIGHS);
    cleanup_free struct ka_neigh *neighs = ka_xcalloc(n ? n : 1, sizeof(*neighs));
    int rc = ka_net_state_load_links(nl, &st, err);
    if (rc == 0)
        rc = ka_net_plan_neighbors(&st, specs, n, neighs, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (ka_nl_request(nl, ka_rtnl_neigh_new(buf, &neighs[i]), err) < 0)
            rc = ka_error_wrap(err, "add neighbour %s dev %s",
                               ka_inet_format(&neighs[i].dst, false, text, sizeof(text)),
                               specs[i].dev);
    ka_net_state_free(&st);
    return rc < 0 ? -1 : 0;
}
