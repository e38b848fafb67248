/* Kernel uevents (NETLINK_KOBJECT_UEVENT): "action@devpath\0KEY=VALUE\0...".
 * The parser is pure so that it can be fuzzed and unit-tested: it copies the
 * datagram and points each field into the copy. */
#ifndef KA_DEVICE_UEVENT_H
#define KA_DEVICE_UEVENT_H

#include <stdbool.h>
#include <stddef.h>

/* The kernel's own limit for one uevent (UEVENT_BUFFER_SIZE) */
#define KA_UEVENT_MAX 2048

struct ka_uevent {
    char buf[KA_UEVENT_MAX + 1];
    /* Each NULL when absent; devpath starts with '/' (e.g. "/devices/..."). */
    const char *action;
    const char *devpath;
    const char *subsystem;
    const char *devname;
    const char *devtype;
    const char *interface;
    const char *driver;
    unsigned long long seqnum;
};

/* Parse one datagram. Returns false for anything that is not a kernel uevent
 * (udev's "libudev" messages, an empty or oversize buffer, a header without
 * '@', a devpath that does not start with '/' or holds "..", a key without '='). */
bool ka_uevent_parse(const void *data, size_t len, struct ka_uevent *ev);

#endif
