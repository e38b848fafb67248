/* The uevent listener: one NETLINK_KOBJECT_UEVENT socket on the reactor. Each
 * kernel uevent is parsed, hotplugged memory is onlined, and every registered
 * waiter is told. When the socket overflowed (events lost), waiters are told
 * with a NULL event: look at sysfs again. */
#ifndef KA_DEVICE_LISTENER_H
#define KA_DEVICE_LISTENER_H

#include <stdbool.h>

#include "core/error.h"
#include "device/uevent.h"

struct ka_reactor;
struct ka_uevent_waiter;

typedef void (*ka_uevent_fn)(struct ka_uevent_waiter *w, const struct ka_uevent *ev);

struct ka_uevent_waiter {
    struct ka_uevent_waiter *next, *prev;
    ka_uevent_fn fn;
    unsigned long long round; /* the delivery round it was last called in */
    bool listed;
};

/* Open the socket and watch it. A failure leaves device waits to time out. */
int ka_uevent_listen(struct ka_reactor *r, struct ka_error *err);
void ka_uevent_close(void);
bool ka_uevent_listening(void);

/* Register / unregister (idempotent). A waiter may unregister itself or any other
 * one from inside its callback. */
void ka_uevent_wait(struct ka_uevent_waiter *w, ka_uevent_fn fn);
void ka_uevent_unwait(struct ka_uevent_waiter *w);

/* Hand one event to the waiters (what the socket handler does; tests call it). */
void ka_uevent_deliver(const struct ka_uevent *ev);

/* Write 1 to /sys<devpath>/online for a memory block that came up offline. */
void ka_uevent_online_memory(const char *sysfs, const struct ka_uevent *ev);

#endif
