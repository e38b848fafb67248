#include "net/netlink.h"
#include "core/util.h"

#include <errno.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

int ka_nl_open(struct ka_nl *nl, struct ka_error *err)
{
    memset(nl, 0, sizeof(*nl));
    nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (!nl->sock)
        return ka_error_set(err, errno, "open rtnetlink socket");
    if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
        int e = errno;
        mnl_socket_close(nl->sock);
        nl->sock = NULL;
        return ka_error_set(err, e, "bind rtnetlink socket");
    }
    /* The kernel's reason in errors, and no copy of our request echoed with them.
     * Both are optional (old kernels): failures only cost the reason text. */
    int one = 1;
    mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one));
    mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one));
    struct timeval tv = {.tv_sec = KA_NL_TIMEOUT_S};
    setsockopt(mnl_socket_get_fd(nl->sock), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    nl->portid = mnl_socket_get_portid(nl->sock);
    nl->seq = (uint32_t)time(NULL);
    nl->buf = ka_xmalloc(KA_NL_RECV_BUF);
    return 0;
}

void ka_nl_close(struct ka_nl *nl)
{
    if (nl->sock)
        mnl_socket_close(nl->sock);
    free(nl->buf);
    memset(nl, 0, sizeof(*nl));
}

const char *ka_nl_ext_ack_msg(const struct nlmsghdr *nlh)
{
    if (nlh->nlmsg_type != NLMSG_ERROR || !(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
        return NULL;
    size_t plen = mnl_nlmsg_get_payload_len(nlh);
    if (plen < sizeof(struct nlmsgerr))
        return NULL;
    const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
    size_t off = sizeof(*e);
    /* Without NLM_F_CAPPED the whole request follows the header copy. */
    if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
        if (e->msg.nlmsg_len < sizeof(struct nlmsghdr))
            return NULL;
        off += MNL_ALIGN(e->msg.nlmsg_len - sizeof(struct nlmsghdr));
    }
    if (off >= plen)
        return NULL;
    const char *base = (const char *)e + off, *end = (const char *)e + plen;
    for (const struct nlattr *a = (const struct nlattr *)base;
         mnl_attr_ok(a, (int)(end - (const char *)a)); a = mnl_attr_next(a)) {
        if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
            mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
            return mnl_attr_get_str(a);
    }
    return NULL;
}

/* The error an NLMSG_ERROR carries (0 for an ack), into err. -1 when malformed. */
static int error_of(const struct nlmsghdr *nlh, struct ka_error *err)
{
    if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct nlmsgerr))
        return ka_error_set(err, EBADMSG, "truncated rtnetlink error message");
    const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
    if (e->error == 0)
        return 0;
    int errnum = e->error < 0 ? -e->error : e->error;
    const char *why = ka_nl_ext_ack_msg(nlh);
    if (why && *why)
        return ka_error_set(err, errnum, "%.200s", why);
    ka_error_set(err, 0, "%s", strerror(errnum));
    err->errnum = errnum;
    return -errnum;
}

struct exchange {
    uint32_t seq;
    ka_nl_msg_fn fn;
    void *data;
    bool done;
    bool interrupted;
    int rc; /* first error: later messages are read and dropped */
};

/* One received batch. */
static void walk(struct ka_nl *nl, size_t len, struct exchange *x, struct ka_error *err)
{
    const struct nlmsghdr *nlh = (const struct nlmsghdr *)nl->buf;
    int rem = (int)len;
    for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem)) {
        /* A late answer to an earlier request that timed out: not ours. */
        if (nlh->nlmsg_seq != x->seq || (nlh->nlmsg_pid && nlh->nlmsg_pid != nl->portid))
            continue;
        if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
            x->interrupted = true;
        switch (nlh->nlmsg_type) {
        case NLMSG_NOOP:
            continue;
        case NLMSG_ERROR: {
            struct ka_error e;
            int rc = error_of(nlh, &e);
            if (rc < 0 && x->rc == 0) {
                *err = e;
                x->rc = rc;
            }
            x->done = true;
            return;
        }
        case NLMSG_DONE:
            /* A dump may end with an error code in place of the data. */
            if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int) && x->rc == 0) {
                int code = *(const int *)mnl_nlmsg_get_payload(nlh);
                if (code < 0)
                    x->rc = ka_error_set(err, -code, "dump");
            }
            x->done = true;
            return;
        default:
            if (x->rc == 0 && x->fn) {
                int rc = x->fn(nlh, x->data, err);
                if (rc < 0)
                    x->rc = rc;
            }
        }
    }
}

static int run(struct ka_nl *nl, struct nlmsghdr *req, struct exchange *x, struct ka_error *err)
{
    req->nlmsg_seq = x->seq = ++nl->seq;
    if (mnl_socket_sendto(nl->sock, req, req->nlmsg_len) < 0)
        return ka_error_set(err, errno, "send rtnetlink request");
    while (!x->done) {
        ssize_t n = mnl_socket_recvfrom(nl->sock, nl->buf, KA_NL_RECV_BUF);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return ka_error_set(err, ETIMEDOUT, "no rtnetlink answer within %d s",
                                    KA_NL_TIMEOUT_S);
            /* ENOSPC: a message larger than the buffer (mnl reports MSG_TRUNC so). */
            return ka_error_set(err, errno, "receive rtnetlink answer");
        }
        walk(nl, (size_t)n, x, err);
    }
    return x->rc;
}

int ka_nl_request(struct ka_nl *nl, struct nlmsghdr *req, struct ka_error *err)
{
    struct exchange x = {0};
    req->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    return run(nl, req, &x, err);
}

int ka_nl_dump(struct ka_nl *nl, struct nlmsghdr *req, ka_nl_msg_fn fn, ka_nl_reset_fn reset,
               void *data, struct ka_error *err)
{
    req->nlmsg_flags |= NLM_F_REQUEST | NLM_F_DUMP;
    for (int attempt = 0;; attempt++) {
        struct exchange x = {.fn = fn, .data = data};
        int rc = run(nl, req, &x, err);
        if (rc < 0 || !x.interrupted)
            return rc;
        if (attempt + 1 == KA_NL_DUMP_RETRIES)
            return ka_error_set(err, EAGAIN, "rtnetlink dump kept changing under us");
        if (reset)
            reset(data);
    }
}
