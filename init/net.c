/* The loopback interface up (§5.1 step 8) through rtnetlink, without `ip`. */
#include "init/init.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* <net/if.h> and <linux/if.h> clash; this is the one call we need from the former. */
extern unsigned int if_nametoindex(const char *ifname);

int ka_init_lo_up(struct ka_error *err)
{
    unsigned int index = if_nametoindex("lo");
    if (index == 0)
        return ka_error_set(err, errno, "lo: no such interface");

    struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (!nl)
        return ka_error_set(err, errno, "rtnetlink socket");
    int rc = 0;
    /* MNL_SOCKET_BUFFER_SIZE is a VLA size (page-size based); a request and its ack
     * are a few dozen bytes. */
    char buf[8192];
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        rc = ka_error_set(err, errno, "bind rtnetlink socket");
        goto out;
    }

    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_NEWLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    unsigned int seq = (unsigned int)time(NULL);
    nlh->nlmsg_seq = seq;
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = (int)index;
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP; /* touch only this bit */

    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
        rc = ka_error_set(err, errno, "send RTM_NEWLINK for lo");
        goto out;
    }
    /* The ack is an NLMSG_ERROR carrying 0 or -errno; mnl_cb_run turns it into errno.
     * The reply lands in buf, over the request: keep nothing of nlh past here. */
    unsigned int portid = mnl_socket_get_portid(nl);
    ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
    if (n < 0) {
        rc = ka_error_set(err, errno, "receive the ack for lo up");
        goto out;
    }
    if (mnl_cb_run(buf, (size_t)n, seq, portid, NULL, NULL) < 0)
        rc = ka_error_set(err, errno, "set lo up");
out:
    mnl_socket_close(nl);
    return rc;
}
