/* Devices the host hands over: what to look for, how to find it in sysfs, and
 * which uevent says it has arrived. A caller first asks ka_device_find (the
 * device may have come before the agent, or before the request); when it is not
 * there yet, it waits for a uevent that ka_device_match accepts and asks again.
 * sysfs stays the one source of truth: a uevent only says "look again".
 *
 * Roots are parameters (struct ka_dev_roots) so the unit tests run the same code
 * against synthetic sysfs and /dev trees. */
#ifndef KA_DEVICE_DEVICE_H
#define KA_DEVICE_DEVICE_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/error.h"
#include "device/pci.h"
#include "device/uevent.h"

struct ka_dev_roots {
    const char *sysfs; /* "/sys" */
    const char *dev;   /* "/dev" */
};

extern const struct ka_dev_roots ka_dev_real_roots;

enum ka_dev_kind {
    KA_DEV_BLK_PCI,    /* a virtio-blk disk by PCI path ("02/00") */
    KA_DEV_BLK_NAME,   /* a block device by node ("/dev/vdb", "/dev/pmem0") */
    KA_DEV_SCSI,       /* a SCSI disk by "target:lun" (host 0, channel 0) */
    KA_DEV_PCI,        /* any PCI function by PCI path (vfio) */
    KA_DEV_VFIO_GROUP, /* /dev/vfio/<group> */
    KA_DEV_NET_PCI,    /* the network interface of a NIC by PCI path (Interface.devicePath) */
};

#define KA_DEV_ARG_MAX 128

struct ka_dev_query {
    enum ka_dev_kind kind;
    char arg[KA_DEV_ARG_MAX]; /* as the host gave it, for messages */
    struct ka_pci_path pci;   /* BLK_PCI, PCI */
    unsigned scsi_target, scsi_lun;
    char name[KA_DEV_ARG_MAX]; /* BLK_NAME: the node below /dev ("vdb"); VFIO_GROUP: "N" */
};

struct ka_dev_found {
    char node[512];    /* /dev/<name> (block, vfio group); the sysfs dir for PCI; the
                        * interface name for NET_PCI */
    char pci_addr[16]; /* PCI: "0000:01:00.0" */
    bool is_block;
    unsigned major, minor;
};

/* Build a query from the host's words; INVALID_ARGUMENT for malformed ones. */
int ka_dev_query_pci_blk(struct ka_dev_query *q, const char *pci_path, struct ka_error *err);
int ka_dev_query_blk_name(struct ka_dev_query *q, const char *node, struct ka_error *err);
int ka_dev_query_scsi(struct ka_dev_query *q, const char *addr, struct ka_error *err);
int ka_dev_query_pci(struct ka_dev_query *q, const char *pci_path, struct ka_error *err);
int ka_dev_query_vfio_group(struct ka_dev_query *q, const char *group, struct ka_error *err);
int ka_dev_query_net_pci(struct ka_dev_query *q, const char *pci_path, struct ka_error *err);

/* Look in sysfs: 1 found (f filled), 0 not there yet, -1 error. A block node
 * missing from /dev (no devtmpfs) is created. */
int ka_device_find(const struct ka_dev_roots *roots, const struct ka_dev_query *q,
                   struct ka_dev_found *f, struct ka_error *err);

/* Would this uevent bring the device? "add" events, and "change" for disks. */
bool ka_device_match(const struct ka_dev_roots *roots, const struct ka_dev_query *q,
                     const struct ka_uevent *ev);

/* Before waiting: SCSI disks appear only after a scan of every SCSI host. */
void ka_device_prepare(const struct ka_dev_roots *roots, const struct ka_dev_query *q);

/* vfio mode: bind the PCI function at sysfs dir f->node to vfio-pci (through
 * driver_override) and return its IOMMU group number. */
int ka_device_vfio_bind(const struct ka_dev_roots *roots, const struct ka_dev_found *f,
                        unsigned *group, struct ka_error *err);

#endif
