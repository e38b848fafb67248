#include "device/listener.h"
#include "core/log.h"
#include "core/reactor.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct mnl_socket *sock;
static struct ka_watch sock_watch;
static struct ka_uevent_waiter *waiters;
static unsigned long long rounds;

bool ka_uevent_listening(void)
{
    return sock != NULL;
}

void ka_uevent_wait(struct ka_uevent_waiter *w, ka_uevent_fn fn)
{
    w->fn = fn;
    if (w->listed)
        return;
    w->round = rounds; /* not called for an event already being delivered */
    w->prev = NULL;
    w->next = waiters;
    if (waiters)
        waiters->prev = w;
    waiters = w;
    w->listed = true;
}

void ka_uevent_unwait(struct ka_uevent_waiter *w)
{
    if (!w->listed)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
    w->listed = false;
}

void ka_uevent_deliver(const struct ka_uevent *ev)
{
    /* A callback may free any waiter, so after each call start again from the
     * head and take the first one not yet called in this round. */
    unsigned long long round = ++rounds;
    for (;;) {
        struct ka_uevent_waiter *w = waiters;
        while (w && w->round >= round)
            w = w->next;
        if (!w)
            return;
        w->round = round;
        w->fn(w, ev);
    }
}

void ka_uevent_online_memory(const char *sysfs, const struct ka_uevent *ev)
{
    static const char prefix[] = "/devices/system/memory/memory";
    if (!ev->action || strcmp(ev->action, "add") != 0 ||
        strncmp(ev->devpath, prefix, sizeof(prefix) - 1) != 0)
        return;
    char path[1024], state[8] = "";
    snprintf(path, sizeof(path), "%s%s/online", sysfs, ev->devpath);
    cleanup_close int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || read(fd, state, sizeof(state) - 1) < 0 || state[0] != '0')
        return; /* onlined by the kernel's auto-online policy, or not a block */
    if (pwrite(fd, "1", 1, 0) != 1)
        ka_log(KA_LOG_WARN, "uevent", "online %s: %s", path, strerror(errno));
}

static void on_socket(struct ka_watch *w, uint32_t events)
{
    (void)w;
    (void)events;
    static struct ka_uevent ev;
    char buf[KA_UEVENT_MAX + 1];
    for (int i = 0; i < 64; i++) {
        struct sockaddr_nl from = {0};
        struct iovec iov = {buf, sizeof(buf)};
        struct msghdr msg = {.msg_name = &from,
                             .msg_namelen = sizeof(from),
                             .msg_iov = &iov,
                             .msg_iovlen = 1};
        ssize_t n = recvmsg(mnl_socket_get_fd(sock), &msg, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == ENOBUFS) {
                ka_log(KA_LOG_WARN, "uevent", "uevents lost (socket overflow): rechecking");
                ka_uevent_deliver(NULL);
                continue;
            }
            return;
        }
        /* Only the kernel (port 0) speaks for devices; udev and others do not. */
        if (from.nl_pid != 0 || (msg.msg_flags & MSG_TRUNC) ||
            !ka_uevent_parse(buf, (size_t)n, &ev))
            continue;
        ka_log(KA_LOG_DEBUG, "uevent", "%s %s subsystem=%s devname=%s", ev.action, ev.devpath,
               ev.subsystem ? ev.subsystem : "", ev.devname ? ev.devname : "");
        ka_uevent_online_memory("/sys", &ev);
        ka_uevent_deliver(&ev);
    }
}

int ka_uevent_listen(struct ka_reactor *r, struct ka_error *err)
{
    if (sock)
        return 0;
    sock = mnl_socket_open2(NETLINK_KOBJECT_UEVENT, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (!sock)
        return ka_error_set(err, errno, "open uevent socket");
    int fd = mnl_socket_get_fd(sock);
    int size = 4 << 20; /* a burst of hotplug events must not overflow it */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    if (mnl_socket_bind(sock, 1 /* the kernel's uevent group */, MNL_SOCKET_AUTOPID) < 0 ||
        ka_reactor_add(r, &sock_watch, fd, EPOLLIN, on_socket, NULL, err) < 0) {
        int e = errno;
        mnl_socket_close(sock);
        sock = NULL;
        return ka_error_set(err, e, "listen for uevents");
    }
    return 0;
}

void ka_uevent_close(void)
{
    if (!sock)
        return;
    ka_reactor_del(&sock_watch);
    mnl_socket_close(sock);
    sock = NULL;
}
