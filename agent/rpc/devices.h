/* Waiting for the devices a request names, without blocking the loop.
 *
 * A handler that needs devices (CreateContainer's storages and devices,
 * CreateSandbox's storages, AddSwap) lists them in a struct rpc_dev_set and
 * calls rpc_await_devices before any side effect. When every device is already
 * in sysfs it returns 1 and the handler goes on. Otherwise the call is parked
 * with a copy of its request and replayed from the top (decoded again, the
 * handler run again) when a matching uevent arrives, or once more when
 * agent.hotplug_timeout runs out, where the handler's rpc_await_devices then
 * fails with DEADLINE_EXCEEDED. */
#ifndef KA_RPC_DEVICES_H
#define KA_RPC_DEVICES_H

#include <stddef.h>

#include "agent.pb-c.h"
#include "container/spec.h"
#include "core/error.h"
#include "device/device.h"

struct agent;
struct ttrpc_call;

/* Bounds on what one request may ask for. */
#define RPC_MAX_DEVICES 64
#define RPC_MAX_DEVICE_OPTIONS 16

struct rpc_dev_need {
    struct ka_dev_query q;
    struct ka_dev_found found; /* valid once rpc_await_devices returned 1 */
    char host_addr[16];        /* vfio: the function's address on the host */
    int device;                /* the request's device index, or -1 (a storage) */
};

struct rpc_dev_set {
    struct rpc_dev_need needs[RPC_MAX_DEVICES];
    size_t n;
};

/* Storages: storage_need[i] is the need giving storage i its device node, or -1
 * (not a block storage, or a /dev node that is already there). */
int rpc_dev_add_storages(struct rpc_dev_set *set, Grpc__Storage **st, size_t n, int *storage_need,
                         struct ka_error *err);

/* CreateContainer's devices: device_need[i] is the first need of device i (vfio
 * devices take one per function, then one for the group). */
int rpc_dev_add_devices(struct rpc_dev_set *set, Grpc__Device **dev, size_t n, int *device_need,
                        struct ka_error *err);

/* vfio mode ("vfio-pci"): once the functions are found, bind each to vfio-pci
 * and add a need for its group's /dev/vfio/<group> node. */
int rpc_dev_add_vfio_groups(struct rpc_dev_set *set, Grpc__Device **dev, size_t n,
                            struct ka_error *err);

/* 1: all found; 0: the call is parked (return 0 from the handler and do
 * nothing else); -1: err (bad device, timeout). */
int rpc_await_devices(struct agent *a, struct ttrpc_call *call, struct rpc_dev_set *set,
                      struct ka_error *err);

/* Point the spec at the devices found: Linux.Devices[path == container_path]
 * get the guest's major/minor (and, for vfio groups, the guest's path), the
 * device cgroup rules naming the host's numbers follow, and each device gets an
 * allow rule. PCIDEVICE_* env values are rewritten from host to guest addresses. */
int rpc_dev_update_spec(struct ka_spec *spec, Grpc__Device **dev, size_t n,
                        const struct rpc_dev_set *set, const int *device_need,
                        struct ka_error *err);

/* The node a storage should mount (its own source when it needs no device). */
const char *rpc_dev_storage_source(const struct rpc_dev_set *set, const int *storage_need,
                                   Grpc__Storage **st, size_t i);

#endif
