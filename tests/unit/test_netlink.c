/* Guest networking without a kernel: address and MAC parsing, rtnetlink messages
 * built and parsed back, extended-ack errors, request specs, and the plans that
 * check a request against a (made-up) guest before anything changes. One test
 * (the MAC change) talks to the kernel, in a child's own network namespace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/inet.h"
#include "net/netconf.h"
#include "net/netlink.h"
#include "net/rtnl.h"

static struct ka_inet ip(const char *s)
{
    struct ka_inet a;
    if (ka_inet_parse(s, AF_UNSPEC, true, &a) < 0)
        fail_msg("bad test address %s", s);
    return a;
}

static const char *fmt(const struct ka_inet *a, bool prefix)
{
    static char buf[4][KA_INET_STRLEN];
    static int n;
    n = (n + 1) % 4;
    return ka_inet_format(a, prefix, buf[n], sizeof(buf[n]));
}

/* ka_net_set_link_mac against the kernel, in a network namespace of a child's
 * own (root only): the MAC changes, an up link is taken down for it, the same MAC
 * again changes nothing, a missing link is NOT_FOUND. */
static int set_link_mac_child(void)
{
    if (unshare(CLONE_NEWNET) < 0 ||
        system("ip link add d0 type veth peer name d1 && ip link set d0 up") != 0)
        return 2;
    struct ka_nl nl = {0};
    struct ka_error err;
    static const uint8_t mac[KA_MAC_LEN] = {0x02, 0x42, 0xac, 0x11, 0x00, 0x07};
    if (ka_nl_open(&nl, &err) < 0 || ka_net_set_link_mac(&nl, "d0", mac, &err) < 0)
        return 3;
    struct ka_net_state st = {0};
    if (ka_net_state_load_links(&nl, &st, &err) < 0)
        return 4;
    const struct ka_link *l = ka_net_link_by_name(&st, "d0");
    if (!l || l->hwaddr_len != 6 || memcmp(l->hwaddr, mac, 6) != 0)
        return 5;
    if (l->flags & IFF_UP)
        return 6;
    if (system("ip link set d0 up") != 0 || ka_net_set_link_mac(&nl, "d0", mac, &err) < 0)
        return 7;
    ka_net_state_free(&st);
    if (ka_net_state_load_links(&nl, &st, &err) < 0 || !(l = ka_net_link_by_name(&st, "d0")) ||
        !(l->flags & IFF_UP))
        return 8; /* already had it: left alone, still up */
    if (ka_net_set_link_mac(&nl, "nope0", mac, &err) == 0 ||
        ka_error_status(&err) != KA_STATUS_NOT_FOUND)
        return 9;
    ka_net_state_free(&st);
    ka_nl_close(&nl);
    return 0;
}

static void test_set_link_mac(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(set_link_mac_child());
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 2)
        skip(); /* no network namespaces or no `ip` here */
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_inet_parse(void **state)
{
    (void)state;
    struct ka_inet a;
    assert_int_equal(ka_inet_parse("10.0.0.2", AF_UNSPEC, false, &a), 0);
    assert_int_equal(a.family, AF_INET);
    assert_int_equal(a.plen, 32);
    assert_string_equal(fmt(&a, false), "10.0.0.2");
    assert_int_equal(ka_inet_parse("10.0.0.0/24", AF_INET, true, &a), 0);
    assert_int_equal(a.plen, 24);
    assert_string_equal(fmt(&a, true), "10.0.0.0/24");
    assert_int_equal(ka_inet_parse("2001:DB8::1/64", AF_UNSPEC, true, &a), 0);
    assert_int_equal(a.family, AF_INET6);
    assert_int_equal(a.plen, 64);
    assert_string_equal(fmt(&a, true), "2001:db8::1/64");
    assert_int_equal(ka_inet_parse("::ffff:1.2.3.4", AF_INET6, false, &a), 0);
    assert_int_equal(ka_inet_parse("0.0.0.0/0", AF_UNSPEC, true, &a), 0);
    assert_int_equal(a.plen, 0);

    static const char *const bad[] = {
        "",
        "10.0.0.256",
        "10.0.0",
        "10.0.0.1/33",
        "10.0.0.1/",
        "/24",
        "10.0.0.1/-1",
        "10.0.0.1/2x",
        "10.0.0.1/1000",
        " 10.0.0.1",
        "10.0.0.1 ",
        "fe80::1%eth0",
        "2001:db8::/129",
        "2001:db8::1::2",
        "localhost",
        "10.0.0.1/24/8",
        "0x0a.0.0.1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ka_inet_parse(bad[i], AF_UNSPEC, true, &a) == 0)
            fail_msg("'%s' parsed", bad[i]);
    /* A prefix where only an address is allowed, and the wrong family. */
    assert_int_equal(ka_inet_parse("10.0.0.1/32", AF_UNSPEC, false, &a), -1);
    assert_int_equal(ka_inet_parse("10.0.0.1", AF_INET6, false, &a), -1);
    assert_int_equal(ka_inet_parse("::1", AF_INET, false, &a), -1);
    /* Overlong input is refused before it is copied. */
    char big[200];
    memset(big, '1', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(ka_inet_parse(big, AF_UNSPEC, true, &a), -1);

    uint8_t plen;
    assert_int_equal(ka_inet_parse_plen("24", AF_INET, &plen), 0);
    assert_int_equal(plen, 24);
    assert_int_equal(ka_inet_parse_plen("128", AF_INET6, &plen), 0);
    assert_int_equal(ka_inet_parse_plen("33", AF_INET, &plen), -1);
    assert_int_equal(ka_inet_parse_plen("", AF_INET, &plen), -1);
    assert_int_equal(ka_inet_parse_plen("+8", AF_INET, &plen), -1);
    assert_int_equal(ka_inet_parse_plen("0128", AF_INET6, &plen), -1);
}

static void test_inet_arith(void **state)
{
    (void)state;
    struct ka_inet net = ip("10.1.0.0/16"), in = ip("10.1.200.3"), out = ip("10.2.0.1");
    assert_true(ka_inet_contains(&net, &in));
    assert_false(ka_inet_contains(&net, &out));
    struct ka_inet odd = ip("10.1.0.0/13"), v6 = ip("2001:db8::/32");
    assert_true(ka_inet_contains(&odd, &out)); /* 10.0.0.0-10.7.255.255 */
    assert_false(ka_inet_contains(&v6, &in));
    struct ka_inet all = ip("0.0.0.0/0");
    assert_true(ka_inet_contains(&all, &in));
    assert_false(ka_inet_host_bits_set(&net));
    struct ka_inet hb = ip("10.1.0.5/24"), hb6 = ip("2001:db8::1/64");
    assert_true(ka_inet_host_bits_set(&hb));
    assert_true(ka_inet_host_bits_set(&hb6));
    struct ka_inet ll = ip("fe80::1"), gl = ip("2001:db8::1");
    assert_true(ka_inet_is_v6_link_local(&ll));
    assert_false(ka_inet_is_v6_link_local(&gl));
    struct ka_inet a = ip("10.1.0.5/24"), b = ip("10.1.0.5/16");
    assert_true(ka_inet_same_addr(&a, &b));
    uint8_t raw[4] = {192, 168, 1, 1};
    assert_int_equal(ka_inet_from_bytes(&a, AF_INET, raw, 4, 24), 0);
    assert_string_equal(fmt(&a, true), "192.168.1.1/24");
    assert_int_equal(ka_inet_from_bytes(&a, AF_INET, raw, 3, 24), -1);
    assert_int_equal(ka_inet_from_bytes(&a, AF_INET6, raw, 4, 24), -1);
    assert_int_equal(ka_inet_from_bytes(&a, AF_INET, raw, 4, 33), -1);
}

static void test_mac(void **state)
{
    (void)state;
    uint8_t mac[KA_MAC_LEN];
    const uint8_t want[] = {0x02, 0x42, 0xac, 0x11, 0x00, 0x02};
    assert_int_equal(ka_mac_parse("02:42:AC:11:00:02", mac), 0);
    assert_memory_equal(mac, want, 6);
    assert_int_equal(ka_mac_parse("2:42:ac:11:0:2", mac), 0);
    assert_memory_equal(mac, want, 6);
    assert_int_equal(ka_mac_parse("02-42-ac-11-00-02", mac), 0);
    static const char *const bad[] = {
        "",
        "02:42:ac:11:00",
        "02:42:ac:11:00:02:03",
        "02:42:ac:11:00:0g",
        "02:42-ac:11:00:02",
        "02:42:ac:11:00:02:",
        ":02:42:ac:11:00:02",
        "024:42:ac:11:00:02",
        "02::42:ac:11:00",
        "0242.ac11.0002",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ka_mac_parse(bad[i], mac) == 0)
            fail_msg("'%s' parsed as a MAC", bad[i]);
    char buf[KA_HWADDR_STRLEN];
    assert_string_equal(ka_hwaddr_format(want, 6, buf, sizeof(buf)), "02:42:ac:11:00:02");
    uint8_t hw[KA_HWADDR_MAX];
    size_t len;
    assert_int_equal(ka_hwaddr_parse("1:2:3:4", hw, &len), 0);
    assert_int_equal(len, 4);
    /* Longer than any hardware address. */
    char big[200] = "0";
    for (int i = 0; i < 40; i++)
        strcat(big, ":0");
    assert_int_equal(ka_hwaddr_parse(big, hw, &len), -1);
}

static void test_ifname(void **state)
{
    (void)state;
    assert_true(ka_ifname_valid("eth0"));
    assert_true(ka_ifname_valid("a23456789012345"));
    assert_false(ka_ifname_valid("a234567890123456"));
    assert_false(ka_ifname_valid(""));
    assert_false(ka_ifname_valid("."));
    assert_false(ka_ifname_valid(".."));
    assert_false(ka_ifname_valid("a/b"));
    assert_false(ka_ifname_valid("eth0:1"));
    assert_false(ka_ifname_valid("eth 0"));
}

/* The attributes of a built message, by type. */
static void attrs_of(const struct nlmsghdr *nlh, size_t hdrlen, const struct nlattr **tb,
                     size_t max)
{
    memset(tb, 0, max * sizeof(*tb));
    const struct nlattr *a;
    mnl_attr_for_each(a, nlh, hdrlen)
    {
        if (mnl_attr_get_type(a) < max)
            tb[mnl_attr_get_type(a)] = a;
    }
}

static void test_build_route(void **state)
{
    (void)state;
    char buf[KA_RTNL_MSG_MAX];
    struct ka_route r = {
        .family = AF_INET,
        .protocol = RTPROT_BOOT,
        .scope = RT_SCOPE_UNIVERSE,
        .type = RTN_UNICAST,
        .table = RT_TABLE_MAIN,
        .flags = RTNH_F_ONLINK,
        .dst = ip("10.2.0.0/16"),
        .gateway = ip("10.0.0.1"),
        .prefsrc = ip("10.0.0.2"),
        .oif = 7,
    };
    struct nlmsghdr *nlh = ka_rtnl_route_new(buf, &r);
    assert_int_equal(nlh->nlmsg_type, RTM_NEWROUTE);
    assert_int_equal(nlh->nlmsg_flags, NLM_F_CREATE | NLM_F_EXCL);
    assert_true(nlh->nlmsg_len <= KA_RTNL_MSG_MAX);
    struct ka_route back;
    assert_int_equal(ka_rtnl_parse_route(nlh, &back), 0);
    assert_int_equal(back.family, AF_INET);
    assert_string_equal(fmt(&back.dst, true), "10.2.0.0/16");
    assert_string_equal(fmt(&back.gateway, false), "10.0.0.1");
    assert_string_equal(fmt(&back.prefsrc, false), "10.0.0.2");
    assert_int_equal(back.src.family, 0);
    assert_int_equal(back.oif, 7);
    assert_int_equal(back.table, RT_TABLE_MAIN);
    assert_int_equal(back.protocol, RTPROT_BOOT);
    assert_int_equal(back.type, RTN_UNICAST);
    assert_int_equal(back.flags, RTNH_F_ONLINK);
    assert_false(back.has_priority);

    /* A default IPv6 route: no RTA_DST at all. A table above 255 goes in RTA_TABLE. */
    struct ka_route d = {.family = AF_INET6,
                         .type = RTN_UNICAST,
                         .table = 1000,
                         .dst = {.family = AF_INET6},
                         .gateway = ip("fe80::1"),
                         .oif = 3,
                         .priority = 1024,
                         .has_priority = true};
    nlh = ka_rtnl_route_del(buf, &d);
    assert_int_equal(nlh->nlmsg_type, RTM_DELROUTE);
    const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
    assert_int_equal(rtm->rtm_dst_len, 0);
    assert_int_equal(rtm->rtm_table, RT_TABLE_UNSPEC);
    const struct nlattr *tb[RTA_MAX + 1];
    attrs_of(nlh, sizeof(*rtm), tb, RTA_MAX + 1);
    assert_null(tb[RTA_DST]);
    assert_non_null(tb[RTA_TABLE]);
    assert_int_equal(mnl_attr_get_u32(tb[RTA_TABLE]), 1000);
    assert_int_equal(mnl_attr_get_u32(tb[RTA_PRIORITY]), 1024);
    assert_int_equal(mnl_attr_get_payload_len(tb[RTA_GATEWAY]), 16);

    /* A source prefix goes in RTA_SRC with its length. */
    struct ka_route s = r;
    s.prefsrc.family = 0;
    s.src = ip("10.9.0.0/16");
    nlh = ka_rtnl_route_new(buf, &s);
    rtm = mnl_nlmsg_get_payload(nlh);
    assert_int_equal(rtm->rtm_src_len, 16);
    assert_int_equal(ka_rtnl_parse_route(nlh, &back), 0);
    assert_string_equal(fmt(&back.src, true), "10.9.0.0/16");
    assert_int_equal(back.mtu, 0);
    attrs_of(nlh, sizeof(*rtm), tb, RTA_MAX + 1);
    assert_null(tb[RTA_METRICS]); /* no MTU asked for: no metrics at all */

    /* Route.mtu (4.x) is RTA_METRICS { RTAX_MTU } on an add, read back the same way;
     * a delete carries no metrics (the kernel matches routes by key). */
    s.mtu = 1400;
    nlh = ka_rtnl_route_new(buf, &s);
    rtm = mnl_nlmsg_get_payload(nlh);
    attrs_of(nlh, sizeof(*rtm), tb, RTA_MAX + 1);
    assert_non_null(tb[RTA_METRICS]);
    const struct nlattr *metric = mnl_attr_get_payload(tb[RTA_METRICS]);
    assert_int_equal(mnl_attr_get_type(metric), RTAX_MTU);
    assert_int_equal(mnl_attr_get_u32(metric), 1400);
    assert_int_equal(ka_rtnl_parse_route(nlh, &back), 0);
    assert_int_equal(back.mtu, 1400);
    nlh = ka_rtnl_route_del(buf, &s);
    attrs_of(nlh, sizeof(*rtm), tb, RTA_MAX + 1);
    assert_null(tb[RTA_METRICS]);
}

static void test_build_addr_link_neigh(void **state)
{
    (void)state;
    char buf[KA_RTNL_MSG_MAX];
    struct ka_inet a = ip("10.0.0.2/24");
    struct nlmsghdr *nlh = ka_rtnl_addr_new(buf, 5, &a);
    assert_int_equal(nlh->nlmsg_flags, NLM_F_CREATE | NLM_F_EXCL);
    struct ka_ifaddr back;
    assert_int_equal(ka_rtnl_parse_addr(nlh, &back), 0);
    assert_int_equal(back.ifindex, 5);
    assert_string_equal(fmt(&back.local, true), "10.0.0.2/24");
    const struct nlattr *tb[IFA_MAX + 1];
    attrs_of(nlh, sizeof(struct ifaddrmsg), tb, IFA_MAX + 1);
    assert_non_null(tb[IFA_BROADCAST]);
    const uint8_t brd[4] = {10, 0, 0, 255};
    assert_memory_equal(mnl_attr_get_payload(tb[IFA_BROADCAST]), brd, 4);
    /* No broadcast on /31 and /32, nor for IPv6. */
    struct ka_inet p2p = ip("10.0.0.2/31"), v6 = ip("2001:db8::2/64");
    attrs_of(ka_rtnl_addr_new(buf, 5, &p2p), sizeof(struct ifaddrmsg), tb, IFA_MAX + 1);
    assert_null(tb[IFA_BROADCAST]);
    nlh = ka_rtnl_addr_new(buf, 5, &v6);
    attrs_of(nlh, sizeof(struct ifaddrmsg), tb, IFA_MAX + 1);
    assert_null(tb[IFA_BROADCAST]);
    assert_int_equal(ka_rtnl_parse_addr(nlh, &back), 0);
    assert_string_equal(fmt(&back.local, true), "2001:db8::2/64");

    nlh = ka_rtnl_addr_del(buf, &back);
    assert_int_equal(nlh->nlmsg_type, RTM_DELADDR);
    const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
    assert_int_equal(ifa->ifa_prefixlen, 64);
    assert_int_equal(ifa->ifa_index, 5);

    struct ka_link_change c = {.index = 9,
                               .name = "eth0",
                               .mtu = 1400,
                               .flags = IFF_UP | IFF_NOARP,
                               .change = IFF_UP | IFF_NOARP};
    nlh = ka_rtnl_link_change(buf, &c);
    assert_int_equal(nlh->nlmsg_type, RTM_NEWLINK);
    const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
    assert_int_equal(ifi->ifi_change, IFF_UP | IFF_NOARP);
    struct ka_link l;
    assert_int_equal(ka_rtnl_parse_link(nlh, &l), 0);
    assert_string_equal(l.name, "eth0");
    assert_int_equal(l.mtu, 1400);
    assert_int_equal(l.index, 9);
    /* Only the flag change: no name, no MTU (and then no name to parse). */
    nlh = ka_rtnl_link_change(buf, &(struct ka_link_change){.index = 9, .change = IFF_UP});
    const struct nlattr *lt[IFLA_MAX + 1];
    attrs_of(nlh, sizeof(struct ifinfomsg), lt, IFLA_MAX + 1);
    assert_null(lt[IFLA_IFNAME]);
    assert_null(lt[IFLA_MTU]);
    assert_null(lt[IFLA_ADDRESS]);
    assert_int_equal(ka_rtnl_parse_link(nlh, &l), -1);
    /* A new MAC (Interface.devicePath's reconciliation) is IFLA_ADDRESS. */
    static const uint8_t mac[KA_MAC_LEN] = {0x02, 0x42, 0xac, 0x11, 0x00, 0x07};
    nlh = ka_rtnl_link_change(buf,
                              &(struct ka_link_change){.index = 9, .hwaddr = mac, .hwaddr_len = 6});
    attrs_of(nlh, sizeof(struct ifinfomsg), lt, IFLA_MAX + 1);
    assert_non_null(lt[IFLA_ADDRESS]);
    assert_int_equal(mnl_attr_get_payload_len(lt[IFLA_ADDRESS]), 6);
    assert_memory_equal(mnl_attr_get_payload(lt[IFLA_ADDRESS]), mac, 6);

    struct ka_neigh n = {.dst = ip("192.168.0.101"),
                         .ifindex = 4,
                         .state = NUD_PERMANENT,
                         .lladdr = {0x6a, 0x92, 0x3a, 0x59, 0x70, 0xaa},
                         .lladdr_len = 6};
    nlh = ka_rtnl_neigh_new(buf, &n);
    assert_int_equal(nlh->nlmsg_type, RTM_NEWNEIGH);
    assert_int_equal(nlh->nlmsg_flags, NLM_F_CREATE | NLM_F_REPLACE);
    const struct ndmsg *nd = mnl_nlmsg_get_payload(nlh);
    assert_int_equal(nd->ndm_family, AF_INET);
    assert_int_equal(nd->ndm_state, NUD_PERMANENT);
    assert_int_equal(nd->ndm_ifindex, 4);
    const struct nlattr *nt[NDA_MAX + 1];
    attrs_of(nlh, sizeof(*nd), nt, NDA_MAX + 1);
    assert_int_equal(mnl_attr_get_payload_len(nt[NDA_DST]), 4);
    assert_memory_equal(mnl_attr_get_payload(nt[NDA_LLADDR]), n.lladdr, 6);
}

/* Hand-made kernel answers: what the parsers skip and what they refuse. */
static void test_parse_kernel_messages(void **state)
{
    (void)state;
    char buf[1024];
    memset(buf, 0, sizeof(buf));
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWLINK;
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
    ifi->ifi_index = 3;
    ifi->ifi_flags = IFF_UP;
    mnl_attr_put_strz(nlh, IFLA_IFNAME, "veth0");
    const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
    mnl_attr_put(nlh, IFLA_ADDRESS, 6, mac);
    mnl_attr_put_u32(nlh, IFLA_MTU, 1500);
    mnl_attr_put_u32(nlh, IFLA_MIN_MTU, 68);
    mnl_attr_put_u32(nlh, IFLA_MAX_MTU, 65535);
    struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
    mnl_attr_nest_end(nlh, info);
    struct ka_link l;
    assert_int_equal(ka_rtnl_parse_link(nlh, &l), 0);
    assert_string_equal(l.name, "veth0");
    assert_string_equal(l.kind, "veth");
    assert_int_equal(l.hwaddr_len, 6);
    assert_int_equal(l.min_mtu, 68);
    assert_int_equal(l.max_mtu, 65535);
    assert_int_equal(l.flags, IFF_UP);

    /* A name that is not NUL-terminated, or too long. */
    memset(buf, 0, sizeof(buf));
    nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWLINK;
    mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg));
    mnl_attr_put(nlh, IFLA_IFNAME, 4, "eth0");
    assert_int_equal(ka_rtnl_parse_link(nlh, &l), -1);
    memset(buf, 0, sizeof(buf));
    nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWLINK;
    mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg));
    mnl_attr_put_strz(nlh, IFLA_IFNAME, "a-name-longer-than-ifnamsiz");
    assert_int_equal(ka_rtnl_parse_link(nlh, &l), -1);

    /* Truncated header; another message type. */
    memset(buf, 0, sizeof(buf));
    nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWROUTE;
    nlh->nlmsg_len += 4;
    struct ka_route r;
    assert_int_equal(ka_rtnl_parse_route(nlh, &r), -1);
    nlh->nlmsg_type = RTM_NEWNEIGH;
    assert_int_equal(ka_rtnl_parse_route(nlh, &r), 1);

    /* An MPLS route is skipped; an IPv4 route with a 16-byte gateway is refused. */
    memset(buf, 0, sizeof(buf));
    nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWROUTE;
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
    rtm->rtm_family = 28; /* AF_MPLS */
    assert_int_equal(ka_rtnl_parse_route(nlh, &r), 1);
    rtm->rtm_family = AF_INET;
    rtm->rtm_dst_len = 24;
    uint8_t dst[4] = {10, 0, 0, 0}, gw[16] = {0};
    mnl_attr_put(nlh, RTA_DST, 4, dst);
    assert_int_equal(ka_rtnl_parse_route(nlh, &r), 0);
    assert_string_equal(fmt(&r.dst, true), "10.0.0.0/24");
    assert_int_equal(r.table, 0);
    mnl_attr_put(nlh, RTA_GATEWAY, 16, gw);
    assert_int_equal(ka_rtnl_parse_route(nlh, &r), -1);
    rtm->rtm_dst_len = 40;
    assert_int_equal(ka_rtnl_parse_route(nlh, &r), -1);

    /* An address with IFA_ADDRESS only (IPv6) and with IFA_FLAGS. */
    memset(buf, 0, sizeof(buf));
    nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWADDR;
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
    ifa->ifa_family = AF_INET6;
    ifa->ifa_prefixlen = 64;
    ifa->ifa_index = 2;
    struct ka_inet v6 = ip("2001:db8::5");
    mnl_attr_put(nlh, IFA_ADDRESS, 16, v6.addr);
    mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_TENTATIVE | IFA_F_PERMANENT);
    struct ka_ifaddr a;
    assert_int_equal(ka_rtnl_parse_addr(nlh, &a), 0);
    assert_string_equal(fmt(&a.local, true), "2001:db8::5/64");
    assert_true(a.flags & IFA_F_TENTATIVE);
    ifa->ifa_family = AF_PACKET;
    assert_int_equal(ka_rtnl_parse_addr(nlh, &a), 1);
}

/* An NLMSG_ERROR as the kernel writes it, with the ext-ack message. */
static size_t put_error(char *buf, int error, bool capped, const char *why)
{
    memset(buf, 0, 1024);
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = NLMSG_ERROR;
    nlh->nlmsg_flags = NLM_F_ACK_TLVS | (capped ? NLM_F_CAPPED : 0);
    struct nlmsgerr *e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
    e->error = error;
    e->msg.nlmsg_len = sizeof(struct nlmsghdr) + (capped ? 0 : 20);
    if (!capped)
        mnl_nlmsg_put_extra_header(nlh, 20); /* the echoed request payload */
    if (why)
        mnl_attr_put_strz(nlh, NLMSGERR_ATTR_MSG, why);
    return nlh->nlmsg_len;
}

static void test_ext_ack(void **state)
{
    (void)state;
    char buf[1024];
    put_error(buf, -ENETUNREACH, true, "Nexthop has invalid gateway");
    const char *m = ka_nl_ext_ack_msg((struct nlmsghdr *)buf);
    assert_non_null(m);
    assert_string_equal(m, "Nexthop has invalid gateway");
    put_error(buf, -EINVAL, false, "Invalid prefix for given prefix length");
    m = ka_nl_ext_ack_msg((struct nlmsghdr *)buf);
    assert_non_null(m);
    assert_string_equal(m, "Invalid prefix for given prefix length");
    put_error(buf, -EINVAL, true, NULL);
    assert_null(ka_nl_ext_ack_msg((struct nlmsghdr *)buf));
    /* An echoed request that claims to be longer than the message. */
    put_error(buf, -EINVAL, false, "x");
    struct nlmsgerr *e = mnl_nlmsg_get_payload((struct nlmsghdr *)buf);
    e->msg.nlmsg_len = 4000;
    assert_null(ka_nl_ext_ack_msg((struct nlmsghdr *)buf));
    e->msg.nlmsg_len = 3;
    assert_null(ka_nl_ext_ack_msg((struct nlmsghdr *)buf));
}

static void test_iface_spec(void **state)
{
    (void)state;
    struct ka_iface_spec s;
    struct ka_error err;
    assert_int_equal(ka_iface_spec_init(&s, "02:42:ac:11:00:02", "eth0", 1500, IFF_NOARP, 2, &err),
                     0);
    assert_true(s.noarp);
    assert_int_equal(ka_iface_spec_add_addr(&s, AF_UNSPEC, "172.17.0.2", "16", &err), 0);
    assert_int_equal(ka_iface_spec_add_addr(&s, AF_INET6, "2001:db8::2", "64", &err), 0);
    assert_int_equal(s.naddrs, 2);
    assert_int_equal(s.addrs[0].plen, 16);
    ka_iface_spec_free(&s);

    assert_int_equal(ka_iface_spec_init(&s, "", "eth0", 0, 0, 0, &err), -1);
    assert_int_equal(err.status, KA_STATUS_INVALID_ARGUMENT);
    assert_int_equal(ka_iface_spec_init(&s, "02:42:ac:11:00", "eth0", 0, 0, 0, &err), -1);
    assert_non_null(strstr(err.msg, "'02:42:ac:11:00' is not a MAC address"));
    assert_int_equal(ka_iface_spec_init(&s, "02:42:ac:11:00:02", "bad/name", 0, 0, 0, &err), -1);
    assert_non_null(strstr(err.msg, "bad/name"));
    assert_int_equal(ka_iface_spec_init(&s, "02:42:ac:11:00:02", "", 1ull << 32, 0, 0, &err), -1);
    assert_int_equal(ka_iface_spec_init(&s, "02:42:ac:11:00:02", "", 0, 0, 100000, &err), -1);
    assert_non_null(strstr(err.msg, "at most"));

    assert_int_equal(ka_iface_spec_init(&s, "02:42:ac:11:00:02", "", 0, 0, 3, &err), 0);
    assert_int_equal(ka_iface_spec_add_addr(&s, AF_INET6, "10.0.0.2", "24", &err), -1);
    assert_non_null(strstr(err.msg, "'10.0.0.2' is IPv4 but the family says IPv6"));
    assert_int_equal(ka_iface_spec_add_addr(&s, AF_UNSPEC, "10.0.0.300", "24", &err), -1);
    assert_non_null(strstr(err.msg, "'10.0.0.300' is not an IP address"));
    assert_int_equal(ka_iface_spec_add_addr(&s, AF_UNSPEC, "10.0.0.3", "40", &err), -1);
    assert_non_null(strstr(err.msg, "mask '40'"));
    assert_int_equal(ka_iface_spec_add_addr(&s, AF_UNSPEC, "10.0.0.3", "", &err), -1);
    assert_int_equal(ka_iface_spec_add_addr(&s, AF_UNSPEC, "10.0.0.3", "24", &err), 0);
    assert_int_equal(ka_iface_spec_add_addr(&s, AF_UNSPEC, "10.0.0.3", "16", &err), -1);
    assert_non_null(strstr(err.msg, "listed twice"));
    ka_iface_spec_free(&s);

    assert_int_equal(ka_net_family_hint(0), AF_UNSPEC);
    assert_int_equal(ka_net_family_hint(1), AF_INET6);
    assert_int_equal(ka_net_family_hint(2), -1);
}

static void test_route_spec(void **state)
{
    (void)state;
    struct ka_route_spec r;
    struct ka_error err;
    char d[128];
    /* The default route: family from the gateway, even with family v4 (unset). */
    assert_int_equal(ka_route_spec_parse(&r, AF_UNSPEC, "", "2001:db8::1", "eth0", "", 0, 0, &err),
                     0);
    assert_int_equal(r.family, AF_INET6);
    assert_int_equal(r.dst.plen, 0);
    assert_int_equal(r.dst.family, AF_INET6);
    assert_string_equal(ka_route_spec_describe(&r, d, sizeof(d)),
                        "default via 2001:db8::1 dev eth0");
    /* No text at all: IPv4, unless the family says v6. */
    assert_int_equal(ka_route_spec_parse(&r, AF_UNSPEC, "", "", "eth0", "", 0, 0, &err), 0);
    assert_int_equal(r.family, AF_INET);
    assert_int_equal(ka_route_spec_parse(&r, AF_INET6, "", "", "eth0", "", 0, 0, &err), 0);
    assert_int_equal(r.family, AF_INET6);
    /* A bare destination is a host route; a bare source is the preferred source. */
    assert_int_equal(ka_route_spec_parse(&r, AF_UNSPEC, "10.1.2.3", "", "eth0", "10.0.0.2", 253, 0,
                                         &err),
                     0);
    assert_int_equal(r.dst.plen, 32);
    assert_string_equal(fmt(&r.prefsrc, false), "10.0.0.2");
    assert_int_equal(r.src.family, 0);
    assert_int_equal(r.scope, 253);
    assert_int_equal(ka_route_spec_parse(&r, AF_UNSPEC, "10.1.0.0/16", "", "eth0", "10.0.0.2/32", 0,
                                         0, &err),
                     0);
    assert_int_equal(r.prefsrc.family, AF_INET);
    assert_int_equal(ka_route_spec_parse(&r, AF_UNSPEC, "10.1.0.0/16", "", "eth0", "10.0.0.0/0", 0,
                                         0, &err),
                     0);
    assert_int_equal(r.prefsrc.family, AF_INET);
    assert_int_equal(ka_route_spec_parse(&r, AF_UNSPEC, "2001:db8:1::/64", "", "eth0",
                                         "2001:db8:2::/48", 0, 0, &err),
                     0);
    assert_int_equal(r.prefsrc.family, 0);
    assert_string_equal(fmt(&r.src, true), "2001:db8:2::/48");
    assert_int_equal(ka_route_spec_parse(&r, AF_UNSPEC, "10.1.0.0/16", "10.0.0.1", "eth0", "", 0,
                                         RTNH_F_ONLINK, &err),
                     0);
    assert_int_equal(r.flags, RTNH_F_ONLINK);

    struct {
        int hint;
        const char *dest, *gw, *dev, *src;
        uint32_t scope, flags;
        const char *why;
    } bad[] = {
        {AF_UNSPEC, "10.0.0.0/24", "2001:db8::1", "eth0", "", 0, 0, "mix IPv4 and IPv6"},
        {AF_INET6, "10.0.0.0/24", "", "eth0", "", 0, 0, "is IPv4 but the family says IPv6"},
        {AF_UNSPEC, "10.0.0.5/24", "", "eth0", "", 0, 0, "bits set past its prefix"},
        {AF_UNSPEC, "10.0.0.0/33", "", "eth0", "", 0, 0, "dest '10.0.0.0/33'"},
        {AF_UNSPEC, "", "10.0.0.1/24", "eth0", "", 0, 0, "gateway '10.0.0.1/24'"},
        {AF_UNSPEC, "", "10.0.0.1", "", "", 0, 0, "no device"},
        {AF_UNSPEC, "", "10.0.0.1", "eth0/1", "", 0, 0, "not a valid link name"},
        {AF_UNSPEC, "", "", "eth0", "10.0.0.x", 0, 0, "source '10.0.0.x'"},
        {AF_UNSPEC, "", "", "eth0", "", 255, 0, "scope 255"},
        {AF_UNSPEC, "", "", "eth0", "", 256, 0, "scope 256"},
        {AF_UNSPEC, "", "10.0.0.1", "eth0", "", 254, 0, "host-scope route cannot have a gateway"},
        {AF_UNSPEC, "", "10.0.0.1", "eth0", "", 0, 1, "only RTNH_F_ONLINK"},
        {AF_UNSPEC, "10.0.0.0/24", "", "eth0", "", 0, RTNH_F_ONLINK, "onlink flag needs a gateway"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ka_error_clear(&err);
        if (ka_route_spec_parse(&r, bad[i].hint, bad[i].dest, bad[i].gw, bad[i].dev, bad[i].src,
                                bad[i].scope, bad[i].flags, &err) == 0)
            fail_msg("case %zu parsed", i);
        assert_int_equal(err.status, KA_STATUS_INVALID_ARGUMENT);
        if (!strstr(err.msg, bad[i].why))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].why);
    }
    /* IPv6 leaves host bits to the kernel (which masks them), as upstream does. */
    assert_int_equal(ka_route_spec_parse(&r, AF_UNSPEC, "2001:db8::1/64", "", "eth0", "", 0, 0,
                                         &err),
                     0);
}

static void test_neigh_spec(void **state)
{
    (void)state;
    struct ka_neigh_spec n;
    struct ka_error err;
    assert_int_equal(ka_neigh_spec_parse(&n, AF_UNSPEC, "192.168.0.101", "eth0",
                                         "6a:92:3a:59:70:aa", 0, 0, &err),
                     0);
    assert_int_equal(n.state, NUD_PERMANENT);
    assert_int_equal(n.lladdr_len, 6);
    assert_int_equal(ka_neigh_spec_parse(&n, AF_UNSPEC, "fe80::1", "eth0", "", NUD_REACHABLE,
                                         NTF_ROUTER, &err),
                     0);
    assert_int_equal(n.state, NUD_REACHABLE);
    assert_int_equal(n.flags, NTF_ROUTER);
    assert_int_equal(n.lladdr_len, 0);
    assert_int_equal(ka_neigh_spec_parse(&n, AF_UNSPEC, "", "eth0", "", 0, 0, &err), -1);
    assert_int_equal(ka_neigh_spec_parse(&n, AF_UNSPEC, "1.2.3.4", "", "", 0, 0, &err), -1);
    assert_int_equal(ka_neigh_spec_parse(&n, AF_UNSPEC, "1.2.3.4", "eth0", "zz", 0, 0, &err), -1);
    assert_non_null(strstr(err.msg, "lladdr 'zz'"));
    assert_int_equal(ka_neigh_spec_parse(&n, AF_UNSPEC, "1.2.3.4", "eth0", "", -1, 0, &err), -1);
    assert_int_equal(ka_neigh_spec_parse(&n, AF_UNSPEC, "1.2.3.4", "eth0", "", 0x100, 0, &err), -1);
    assert_int_equal(ka_neigh_spec_parse(&n, AF_UNSPEC, "1.2.3.4", "eth0", "", 0, 0x100, &err), -1);
    assert_int_equal(ka_neigh_spec_parse(&n, AF_INET6, "1.2.3.4", "eth0", "", 0, 0, &err), -1);
}

/* A made-up guest: lo, eth0 (up), eth1 (down), vlo0 (up, its routes survive
 * because the name has "lo" in it, as upstream has it). */
struct fake {
    struct ka_link links[8];
    struct ka_ifaddr addrs[8];
    struct ka_route routes[16];
    struct ka_net_state st;
};

static void fake_link(struct fake *f, int index, const char *name, unsigned flags, uint8_t last)
{
    struct ka_link *l = &f->links[f->st.nlinks++];
    memset(l, 0, sizeof(*l));
    l->index = index;
    snprintf(l->name, sizeof(l->name), "%s", name);
    l->flags = flags;
    l->hwaddr_len = 6;
    l->hwaddr[0] = 2;
    l->hwaddr[5] = last;
    l->mtu = 1500;
    l->min_mtu = 68;
    l->max_mtu = 9000;
}

static void fake_addr(struct fake *f, int ifindex, const char *cidr, uint32_t flags, uint8_t scope)
{
    struct ka_ifaddr *a = &f->addrs[f->st.naddrs++];
    memset(a, 0, sizeof(*a));
    a->ifindex = ifindex;
    a->local = a->address = ip(cidr);
    a->flags = flags;
    a->scope = scope;
}

static struct ka_route *fake_route(struct fake *f, const char *dst, const char *gw, int oif,
                                   uint8_t proto, uint8_t scope, uint32_t table, uint8_t type)
{
    struct ka_route *r = &f->routes[f->st.nroutes++];
    memset(r, 0, sizeof(*r));
    r->dst = ip(dst);
    r->family = r->dst.family;
    if (gw)
        r->gateway = ip(gw);
    r->oif = oif;
    r->protocol = proto;
    r->scope = scope;
    r->table = table;
    r->type = type;
    return r;
}

static void fake_init(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    f->st.links = f->links;
    f->st.addrs = f->addrs;
    f->st.routes = f->routes;
    fake_link(f, 1, "lo", IFF_UP | IFF_LOOPBACK, 0);
    f->links[0].hwaddr_len = 6;
    memset(f->links[0].hwaddr, 0, 6);
    fake_link(f, 2, "eth0", IFF_UP, 0x10);
    fake_link(f, 3, "eth1", 0, 0x11);
    fake_link(f, 4, "vlo0", IFF_UP, 0x12);
    fake_addr(f, 2, "10.0.0.2/24", IFA_F_PERMANENT, RT_SCOPE_UNIVERSE);
    fake_addr(f, 2, "2001:db8::2/64", IFA_F_PERMANENT, RT_SCOPE_UNIVERSE);
    fake_addr(f, 2, "2001:db8::3/64", IFA_F_PERMANENT | IFA_F_TENTATIVE, RT_SCOPE_UNIVERSE);
    fake_addr(f, 2, "fe80::10/64", IFA_F_PERMANENT, RT_SCOPE_LINK);
    /* 0 kernel subnet route, 1 old default, 2 old route on vlo0, 3 local table,
     * 4 multipath (no oif), 5 v6 kernel, 6 v6 old default (ra). */
    fake_route(f, "10.0.0.0/24", NULL, 2, RTPROT_KERNEL, RT_SCOPE_LINK, RT_TABLE_MAIN, RTN_UNICAST);
    fake_route(f, "0.0.0.0/0", "10.0.0.1", 2, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN,
               RTN_UNICAST);
    fake_route(f, "10.50.0.0/16", NULL, 4, RTPROT_BOOT, RT_SCOPE_LINK, RT_TABLE_MAIN, RTN_UNICAST);
    fake_route(f, "10.0.0.2/32", NULL, 2, RTPROT_KERNEL, RT_SCOPE_HOST, RT_TABLE_LOCAL, RTN_LOCAL);
    fake_route(f, "10.60.0.0/16", NULL, 0, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN,
               RTN_UNICAST);
    fake_route(f, "2001:db8::/64", NULL, 2, RTPROT_KERNEL, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN,
               RTN_UNICAST);
    fake_route(f, "::/0", "fe80::1", 2, RTPROT_RA, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN, RTN_UNICAST);
}

static void spec(struct ka_route_spec *r, const char *dest, const char *gw, const char *dev,
                 const char *src, uint32_t scope)
{
    struct ka_error err;
    if (ka_route_spec_parse(r, AF_UNSPEC, dest, gw, dev, src, scope, 0, &err) < 0)
        fail_msg("spec: %s", err.msg);
}

static void test_plan_interface(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f);
    struct ka_iface_spec s;
    struct ka_iface_plan plan;
    struct ka_error err;
    assert_int_equal(ka_iface_spec_init(&s, "02:00:00:00:00:11", "eth9", 1400, 0, 0, &err), 0);
    assert_int_equal(ka_net_plan_interface(&f.st, &s, &plan, &err), 0);
    assert_string_equal(plan.link->name, "eth1");
    assert_null(plan.other);
    /* The wanted name is taken: that link moves aside to <name>_temp. */
    snprintf(s.name, sizeof(s.name), "eth0");
    assert_int_equal(ka_net_plan_interface(&f.st, &s, &plan, &err), 0);
    assert_string_equal(plan.other->name, "eth0");
    assert_string_equal(plan.other_temp, "eth0_temp");
    /* ... unless <name>_temp is taken too, or too long. */
    snprintf(f.links[3].name, sizeof(f.links[3].name), "eth0_temp");
    assert_int_equal(ka_net_plan_interface(&f.st, &s, &plan, &err), -1);
    assert_int_equal(err.status, KA_STATUS_FAILED_PRECONDITION);
    snprintf(f.links[2].name, sizeof(f.links[2].name), "abcdefghijk");
    snprintf(f.links[1].name, sizeof(f.links[1].name), "abcdefghijk0");
    snprintf(s.name, sizeof(s.name), "abcdefghijk0");
    assert_int_equal(ka_net_plan_interface(&f.st, &s, &plan, &err), -1);
    assert_int_equal(err.status, KA_STATUS_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "longer than 15"));
    /* Its own name: nothing to move. */
    snprintf(s.name, sizeof(s.name), "abcdefghijk");
    assert_int_equal(ka_net_plan_interface(&f.st, &s, &plan, &err), 0);
    assert_null(plan.other);
    /* MTU outside the link's range. */
    s.mtu = 9001;
    assert_int_equal(ka_net_plan_interface(&f.st, &s, &plan, &err), -1);
    assert_non_null(strstr(err.msg, "mtu 9001"));
    s.mtu = 67;
    assert_int_equal(ka_net_plan_interface(&f.st, &s, &plan, &err), -1);
    /* Unknown MAC. */
    s.mtu = 0;
    s.mac[5] = 0x99;
    assert_int_equal(ka_net_plan_interface(&f.st, &s, &plan, &err), -1);
    assert_int_equal(err.status, KA_STATUS_NOT_FOUND);
    assert_non_null(strstr(err.msg, "02:00:00:00:00:99"));
    ka_iface_spec_free(&s);
}

static void test_plan_routes(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f);
    struct ka_route_spec s[4];
    struct ka_routes_plan plan;
    struct ka_error err;

    /* What goes: the old default routes (v4 boot, v6 ra); what stays: kernel
     * routes, the vlo0 route ("lo" in the name), the multipath one (no oif). */
    assert_false(ka_net_route_replaced(&f.st, &f.routes[0]));
    assert_true(ka_net_route_replaced(&f.st, &f.routes[1]));
    assert_false(ka_net_route_replaced(&f.st, &f.routes[2]));
    assert_false(ka_net_route_replaced(&f.st, &f.routes[3]));
    assert_false(ka_net_route_replaced(&f.st, &f.routes[4]));
    assert_true(ka_net_route_replaced(&f.st, &f.routes[6]));

    /* Gateway routes come after the link routes that make them reachable. */
    spec(&s[0], "", "10.1.0.1", "eth0", "", 0);
    spec(&s[1], "10.1.0.0/16", "", "eth0", "", RT_SCOPE_LINK);
    spec(&s[2], "", "2001:db8::1", "eth0", "", 0);
    spec(&s[3], "10.2.0.0/16", "10.0.0.254", "eth0", "10.0.0.2", 0);
    assert_int_equal(ka_net_plan_routes(&f.st, s, 4, &plan, &err), 0);
    assert_int_equal(plan.nadd, 4);
    assert_int_equal(plan.add_spec[0], 1);
    assert_int_equal(plan.add_spec[1], 0);
    assert_int_equal(plan.add_spec[2], 2);
    assert_int_equal(plan.add_spec[3], 3);
    assert_int_equal(plan.add[0].oif, 2);
    assert_int_equal(plan.add[0].protocol, RTPROT_BOOT);
    assert_int_equal(plan.add[0].table, RT_TABLE_MAIN);
    assert_int_equal(plan.ndel, 2);
    assert_ptr_equal(plan.del[0], &f.routes[1]);
    assert_ptr_equal(plan.del[1], &f.routes[6]);
    ka_routes_plan_free(&plan);

    /* An empty list only deletes. */
    assert_int_equal(ka_net_plan_routes(&f.st, s, 0, &plan, &err), 0);
    assert_int_equal(plan.nadd, 0);
    assert_int_equal(plan.ndel, 2);
    ka_routes_plan_free(&plan);

    /* Unknown device, link down. */
    spec(&s[0], "10.1.0.0/16", "", "eth7", "", RT_SCOPE_LINK);
    assert_int_equal(ka_net_plan_routes(&f.st, s, 1, &plan, &err), -1);
    assert_int_equal(err.status, KA_STATUS_NOT_FOUND);
    assert_non_null(strstr(err.msg, "route 10.1.0.0/16 dev eth7: no link named eth7"));
    spec(&s[0], "10.1.0.0/16", "", "eth1", "", RT_SCOPE_LINK);
    assert_int_equal(ka_net_plan_routes(&f.st, s, 1, &plan, &err), -1);
    assert_int_equal(err.status, KA_STATUS_FAILED_PRECONDITION);
    assert_non_null(strstr(err.msg, "link eth1 is down"));

    /* Unreachable gateways: outside every link route of eth0; reachable only
     * through the route being deleted; only through a universe-scope route
     * (the kernel looks the gateway up at link scope); on another link. */
    static const struct {
        const char *dest, *gw, *dev;
        uint32_t scope;
    } unreachable[] = {
        {"", "192.168.9.1", "eth0", 0},
        {"10.9.0.0/16", "10.50.0.1", "eth0", 0},
    };
    for (size_t i = 0; i < sizeof(unreachable) / sizeof(unreachable[0]); i++) {
        spec(&s[0], unreachable[i].dest, unreachable[i].gw, unreachable[i].dev, "",
             unreachable[i].scope);
        assert_int_equal(ka_net_plan_routes(&f.st, s, 1, &plan, &err), -1);
        assert_int_equal(err.status, KA_STATUS_INVALID_ARGUMENT);
        assert_non_null(strstr(err.msg, "is not reachable on eth0"));
    }
    spec(&s[0], "10.1.0.0/16", "", "eth0", "", RT_SCOPE_UNIVERSE);
    spec(&s[1], "", "10.1.0.1", "eth0", "", 0);
    assert_int_equal(ka_net_plan_routes(&f.st, s, 2, &plan, &err), -1);
    assert_non_null(strstr(err.msg, "gateway 10.1.0.1 is not reachable"));
    spec(&s[0], "10.1.0.0/16", "", "vlo0", "", RT_SCOPE_LINK);
    assert_int_equal(ka_net_plan_routes(&f.st, s, 2, &plan, &err), -1);
    /* Reachable: through the vlo0 route that stays; a link-local IPv6 gateway;
     * the onlink flag. */
    spec(&s[0], "", "10.50.0.1", "vlo0", "", 0);
    spec(&s[1], "", "fe80::99", "eth0", "", 0);
    assert_int_equal(ka_route_spec_parse(&s[2], AF_UNSPEC, "10.7.0.0/16", "192.168.1.1", "eth0", "",
                                         0, RTNH_F_ONLINK, &err),
                     0);
    assert_int_equal(ka_net_plan_routes(&f.st, s, 3, &plan, &err), 0);
    ka_routes_plan_free(&plan);
    /* An IPv6 gateway cannot be an address of the guest (an IPv4 one can). */
    spec(&s[0], "", "2001:db8::2", "eth0", "", 0);
    assert_int_equal(ka_net_plan_routes(&f.st, s, 1, &plan, &err), -1);
    assert_non_null(strstr(err.msg, "gateway 2001:db8::2 is an address of this guest"));
    spec(&s[0], "10.9.0.0/16", "10.0.0.2", "eth0", "", 0);
    assert_int_equal(ka_net_plan_routes(&f.st, s, 1, &plan, &err), 0);
    ka_routes_plan_free(&plan);

    /* Preferred sources: not an address here; IPv6 still tentative. */
    spec(&s[0], "10.2.0.0/16", "", "eth0", "10.0.0.99", RT_SCOPE_LINK);
    assert_int_equal(ka_net_plan_routes(&f.st, s, 1, &plan, &err), -1);
    assert_non_null(strstr(err.msg, "source 10.0.0.99 is not an address of this guest"));
    spec(&s[0], "2001:db8:5::/64", "", "eth0", "2001:db8::3", 0);
    assert_int_equal(ka_net_plan_routes(&f.st, s, 1, &plan, &err), -1);
    assert_int_equal(err.status, KA_STATUS_FAILED_PRECONDITION);
    assert_non_null(strstr(err.msg, "tentative"));
    spec(&s[0], "2001:db8:5::/64", "", "eth0", "2001:db8::2", 0);
    assert_int_equal(ka_net_plan_routes(&f.st, s, 1, &plan, &err), 0);
    ka_routes_plan_free(&plan);
    /* A link-local source must be on the route's own link. */
    spec(&s[0], "2001:db8:5::/64", "", "vlo0", "fe80::10", 0);
    assert_int_equal(ka_net_plan_routes(&f.st, s, 1, &plan, &err), -1);

    /* Too many. */
    assert_int_equal(ka_net_plan_routes(&f.st, s, KA_NET_MAX_REQ_ROUTES + 1, &plan, &err), -1);
    assert_non_null(strstr(err.msg, "at most"));
}

static void test_plan_neighbors(void **state)
{
    (void)state;
    struct fake f;
    fake_init(&f);
    struct ka_neigh_spec s[2];
    struct ka_neigh out[2];
    struct ka_error err;
    assert_int_equal(ka_neigh_spec_parse(&s[0], AF_UNSPEC, "10.0.0.9", "eth0", "6a:92:3a:59:70:aa",
                                         0, 0, &err),
                     0);
    assert_int_equal(ka_neigh_spec_parse(&s[1], AF_UNSPEC, "fe80::9", "eth1", "", 0, 0, &err), 0);
    assert_int_equal(ka_net_plan_neighbors(&f.st, s, 2, out, &err), 0);
    assert_int_equal(out[0].ifindex, 2);
    assert_int_equal(out[0].state, NUD_PERMANENT);
    assert_int_equal(out[1].ifindex, 3);
    assert_int_equal(ka_neigh_spec_parse(&s[1], AF_UNSPEC, "10.0.0.8", "eth0", "01:02:03:04", 0, 0,
                                         &err),
                     0);
    assert_int_equal(ka_net_plan_neighbors(&f.st, s, 2, out, &err), -1);
    assert_non_null(strstr(err.msg, "lladdr has 4 bytes but eth0's addresses have 6"));
    assert_int_equal(ka_neigh_spec_parse(&s[1], AF_UNSPEC, "10.0.0.8", "eth5", "", 0, 0, &err), 0);
    assert_int_equal(ka_net_plan_neighbors(&f.st, s, 2, out, &err), -1);
    assert_int_equal(err.status, KA_STATUS_NOT_FOUND);
    assert_non_null(strstr(err.msg, "neighbour 10.0.0.8: no link named eth5"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inet_parse),
        cmocka_unit_test(test_inet_arith),
        cmocka_unit_test(test_mac),
        cmocka_unit_test(test_ifname),
        cmocka_unit_test(test_build_route),
        cmocka_unit_test(test_build_addr_link_neigh),
        cmocka_unit_test(test_parse_kernel_messages),
        cmocka_unit_test(test_ext_ack),
        cmocka_unit_test(test_iface_spec),
        cmocka_unit_test(test_route_spec),
        cmocka_unit_test(test_neigh_spec),
        cmocka_unit_test(test_plan_interface),
        cmocka_unit_test(test_plan_routes),
        cmocka_unit_test(test_plan_neighbors),
        cmocka_unit_test(test_set_link_mac),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
