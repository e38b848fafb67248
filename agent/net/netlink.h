/* A NETLINK_ROUTE socket used synchronously: one request, wait for its ack; or
 * one dump, every message handed to a callback. The kernel answers a local
 * rtnetlink request at once, so this runs inside an RPC handler without the
 * reactor; a receive timeout still bounds the wait so a kernel that never
 * answers cannot hang PID 1. Errors carry the kernel's extended-ack text when it
 * gives one ("Nexthop has invalid gateway: Network is unreachable"). */
#ifndef KA_NET_NETLINK_H
#define KA_NET_NETLINK_H

#include <libmnl/libmnl.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

/* Receive buffer: larger than any single rtnetlink message the kernel builds for
 * a dump (it sizes dump skbs to at most 32 KiB for a reader this big). */
#define KA_NL_RECV_BUF (64 * 1024)
/* How long to wait for an answer before giving up. */
#define KA_NL_TIMEOUT_S 5
/* Dumps the kernel marks interrupted (the table changed meanwhile) are redone. */
#define KA_NL_DUMP_RETRIES 5

struct ka_nl {
    struct mnl_socket *sock;
    uint32_t portid;
    uint32_t seq;
    char *buf; /* KA_NL_RECV_BUF bytes */
};

int ka_nl_open(struct ka_nl *nl, struct ka_error *err);
/* Safe on a zeroed or failed-to-open handle. */
void ka_nl_close(struct ka_nl *nl);

static inline void ka_nl_closep(struct ka_nl *nl)
{
    ka_nl_close(nl);
}
#define cleanup_nl __attribute__((cleanup(ka_nl_closep)))

/* Send req (NLM_F_REQUEST|NLM_F_ACK are added, the sequence number is set) and wait
 * for its ack. Returns 0, or -errno with err set to the kernel's reason. */
int ka_nl_request(struct ka_nl *nl, struct nlmsghdr *req, struct ka_error *err);

/* Called for each message of a dump; a negative return (with err set) stops the
 * callbacks, the rest of the dump is read and dropped, and that error returned. */
typedef int (*ka_nl_msg_fn)(const struct nlmsghdr *nlh, void *data, struct ka_error *err);
/* Called before a dump is redone after an interruption: forget what was collected. */
typedef void (*ka_nl_reset_fn)(void *data);

/* Send a dump request (NLM_F_REQUEST|NLM_F_DUMP are added) and feed every answer
 * to fn until NLMSG_DONE. */
int ka_nl_dump(struct ka_nl *nl, struct nlmsghdr *req, ka_nl_msg_fn fn, ka_nl_reset_fn reset,
               void *data, struct ka_error *err);

/* The text of an NLMSG_ERROR's extended ack (NLMSGERR_ATTR_MSG), or NULL.
 * Exposed for the unit tests. */
const char *ka_nl_ext_ack_msg(const struct nlmsghdr *nlh);

#endif
