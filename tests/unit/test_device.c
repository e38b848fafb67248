/* The device layer against synthetic sysfs and /dev trees and hand-made uevent
 * payloads: uevent parsing, PCI paths (x86's /devices/pci0000:00 and riscv64
 * qemu virt's /devices/platform/soc/30000000.pci/pci0000:00, through a bridge),
 * the sysfs lookups for every kind of device, the uevent matchers, the SCSI scan,
 * vfio binding, the waiter list and memory onlining. Runs as root (mknod). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "device/device.h"
#include "device/listener.h"
#include "device/pci.h"
#include "device/uevent.h"

#define RISCV_ROOT "/devices/platform/soc/30000000.pci/pci0000:00"
#define X86_ROOT "/devices/pci0000:00"

static char top[64], sysfs[128], dev[128];
static struct ka_dev_roots roots;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    snprintf(top, sizeof(top), "/tmp/ka-device-XXXXXX");
    assert_non_null(mkdtemp(top));
    snprintf(sysfs, sizeof(sysfs), "%s/sys", top);
    snprintf(dev, sizeof(dev), "%s/dev", top);
    assert_int_equal(mkdir(sysfs, 0755), 0);
    assert_int_equal(mkdir(dev, 0755), 0);
    roots.sysfs = sysfs;
    roots.dev = dev;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void mkdirs(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s%s", top, rel);
    for (char *p = path + strlen(top) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

static void put(const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s%s", top, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void get(const char *rel, char *buf, size_t size)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s%s", top, rel);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void link_to(const char *target, const char *rel)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s%s", top, rel);
    assert_int_equal(symlink(target, path), 0);
}

/* The sysfs of a PCI root bus with a virtio-blk disk behind a bridge at 02 (bus
 * 01, slot 00) and one directly at slot 03. */
static void make_pci_tree(const char *root_bus, bool class_link)
{
    char p[512];
    snprintf(p, sizeof(p), "/sys%s/pci_bus/0000:00", root_bus);
    mkdirs(p);
    if (class_link) {
        mkdirs("/sys/class/pci_bus");
        snprintf(p, sizeof(p), "../../%s/pci_bus/0000:00", root_bus + 1);
        link_to(p, "/sys/class/pci_bus/0000:00");
    }
    snprintf(p, sizeof(p), "/sys%s/0000:00:02.0/pci_bus/0000:01", root_bus);
    mkdirs(p);
    snprintf(p, sizeof(p), "/sys%s/0000:00:02.0/0000:01:00.0/virtio3/block/vdb", root_bus);
    mkdirs(p);
    strcat(p, "/dev");
    put(p, "254:16\n");
    snprintf(p, sizeof(p), "/sys%s/0000:00:03.0/virtio4/block/vdc", root_bus);
    mkdirs(p);
    strcat(p, "/dev");
    put(p, "254:32\n");
}

/* ---- uevents ---------------------------------------------------------------------------- */

static size_t payload(char *buf, const char *const *records)
{
    size_t len = 0;
    for (; *records; records++) {
        strcpy(buf + len, *records);
        len += strlen(*records) + 1;
    }
    return len;
}

static void test_uevent_parse(void **state)
{
    (void)state;
    char buf[1024];
    struct ka_uevent ev;
    const char *const add[] = {"add@/devices/pci0000:00/0000:00:03.0/virtio4/block/vdc",
                               "ACTION=add",
                               "DEVPATH=/devices/pci0000:00/0000:00:03.0/virtio4/block/vdc",
                               "SUBSYSTEM=block",
                               "MAJOR=254",
                               "MINOR=32",
                               "DEVNAME=vdc",
                               "DEVTYPE=disk",
                               "SEQNUM=1234",
                               NULL};
    assert_true(ka_uevent_parse(buf, payload(buf, add), &ev));
    assert_string_equal(ev.action, "add");
    assert_string_equal(ev.devpath, "/devices/pci0000:00/0000:00:03.0/virtio4/block/vdc");
    assert_string_equal(ev.subsystem, "block");
    assert_string_equal(ev.devname, "vdc");
    assert_string_equal(ev.devtype, "disk");
    assert_null(ev.interface);
    assert_int_equal(ev.seqnum, 1234);

    /* The header alone is enough for action and devpath. */
    const char *const bare[] = {"remove@/devices/virtual/block/loop3", NULL};
    assert_true(ka_uevent_parse(buf, payload(buf, bare), &ev));
    assert_string_equal(ev.action, "remove");
    assert_string_equal(ev.devpath, "/devices/virtual/block/loop3");
    assert_null(ev.subsystem);

    /* Not kernel uevents, or not safe to build sysfs paths from. */
    const char *const udev[] = {"libudev", "ACTION=add", "DEVPATH=/devices/x", NULL};
    assert_false(ka_uevent_parse(buf, payload(buf, udev), &ev));
    const char *const dotdot[] = {"add@/devices/../../etc", NULL};
    assert_false(ka_uevent_parse(buf, payload(buf, dotdot), &ev));
    const char *const rel[] = {"add@devices/x", NULL};
    assert_false(ka_uevent_parse(buf, payload(buf, rel), &ev));
    const char *const nokey[] = {"add@/devices/x", "GARBAGE", NULL};
    assert_false(ka_uevent_parse(buf, payload(buf, nokey), &ev));
    const char *const noaction[] = {"@/devices/x", NULL};
    assert_false(ka_uevent_parse(buf, payload(buf, noaction), &ev));
    assert_false(ka_uevent_parse(buf, 0, &ev));
    static char big[KA_UEVENT_MAX + 10];
    memset(big, 'a', sizeof(big));
    assert_false(ka_uevent_parse(big, sizeof(big), &ev));
    /* No NUL at the end: still bounded. */
    assert_true(ka_uevent_parse("add@/devices/y", 14, &ev));
    assert_string_equal(ev.devpath, "/devices/y");
}

/* ---- PCI paths ---------------------------------------------------------------------------- */

static void test_pci_path_parse(void **state)
{
    (void)state;
    struct ka_pci_path p;
    struct ka_error err;
    assert_int_equal(ka_pci_path_parse("02/00", &p, &err), 0);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.slot[0], 2);
    assert_int_equal(p.slot[1], 0);
    assert_int_equal(ka_pci_path_parse("1f.7", &p, &err), 0);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.slot[0], 0x1f);
    assert_int_equal(p.fn[0], 7);
    assert_int_equal(ka_pci_path_parse("0A/1", &p, &err), 0);
    assert_int_equal(p.slot[0], 10);
    const char *bad[] = {"",    "/",
                         "02/", "/02",
                         "20",  "02.8",
                         "xyz", "02//03",
                         "002", "01/01/01/01/01/01/01/01/01/01/01/01/01/01/01/01/01",
                         "02.", "-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ka_pci_path_parse(bad[i], &p, &err), -1);
        assert_int_equal(ka_error_status(&err), KA_STATUS_INVALID_ARGUMENT);
    }
    uint32_t slots[] = {2, 0};
    assert_int_equal(ka_pci_path_from_slots(slots, 2, &p, &err), 0);
    assert_int_equal(p.n, 2);
    uint32_t bad_slot[] = {0x20};
    assert_int_equal(ka_pci_path_from_slots(bad_slot, 1, &p, &err), -1);
    assert_int_equal(ka_pci_path_from_slots(slots, 0, &p, &err), -1);
}

static void test_root_bus_riscv_virt(void **state)
{
    (void)state;
    make_pci_tree(RISCV_ROOT, true);
    char root[512];
    struct ka_error err;
    assert_int_equal(ka_pci_root_bus(sysfs, root, sizeof(root), &err), 0);
    assert_string_equal(root, RISCV_ROOT);
}

static void test_root_bus_by_search(void **state)
{
    (void)state;
    make_pci_tree(RISCV_ROOT, false); /* no /sys/class/pci_bus: search /sys/devices */
    mkdirs("/sys/devices/system/cpu/cpu0");
    char root[512];
    struct ka_error err;
    assert_int_equal(ka_pci_root_bus(sysfs, root, sizeof(root), &err), 0);
    assert_string_equal(root, RISCV_ROOT);
}

static void test_root_bus_x86_and_none(void **state)
{
    (void)state;
    char root[512];
    struct ka_error err;
    assert_int_equal(ka_pci_root_bus(sysfs, root, sizeof(root), &err), -1);
    assert_int_equal(ka_error_status(&err), KA_STATUS_NOT_FOUND);
    make_pci_tree(X86_ROOT, true);
    assert_int_equal(ka_pci_root_bus(sysfs, root, sizeof(root), &err), 0);
    assert_string_equal(root, X86_ROOT);
}

static void test_relpath_through_bridge(void **state)
{
    (void)state;
    make_pci_tree(RISCV_ROOT, true);
    struct ka_pci_path p;
    struct ka_error err;
    char rel[512];
    assert_int_equal(ka_pci_path_parse("02/00", &p, &err), 0);
    assert_int_equal(ka_pci_relpath(sysfs, RISCV_ROOT, &p, rel, sizeof(rel), &err), 1);
    assert_string_equal(rel, "/0000:00:02.0/0000:01:00.0");
    assert_int_equal(ka_pci_path_parse("03", &p, &err), 0);
    assert_int_equal(ka_pci_relpath(sysfs, RISCV_ROOT, &p, rel, sizeof(rel), &err), 1);
    assert_string_equal(rel, "/0000:00:03.0");
    /* A bridge that is not there (yet). */
    assert_int_equal(ka_pci_path_parse("05/01", &p, &err), 0);
    assert_int_equal(ka_pci_relpath(sysfs, RISCV_ROOT, &p, rel, sizeof(rel), &err), 0);
    /* A bridge with two secondary buses is not something to guess about. */
    mkdirs("/sys" RISCV_ROOT "/0000:00:02.0/pci_bus/0000:02");
    assert_int_equal(ka_pci_path_parse("02/00", &p, &err), 0);
    assert_int_equal(ka_pci_relpath(sysfs, RISCV_ROOT, &p, rel, sizeof(rel), &err), -1);
}

/* ---- finding devices ------------------------------------------------------------------------ */

static void test_find_blk_pci(void **state)
{
    (void)state;
    make_pci_tree(RISCV_ROOT, true);
    struct ka_dev_query q;
    struct ka_dev_found f;
    struct ka_error err;
    assert_int_equal(ka_dev_query_pci_blk(&q, "02/00", &err), 0);
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 1);
    char want[256];
    snprintf(want, sizeof(want), "%s/vdb", dev);
    assert_string_equal(f.node, want);
    assert_true(f.is_block);
    assert_int_equal(f.major, 254);
    assert_int_equal(f.minor, 16);
    /* The node was made (no devtmpfs here) with the device's numbers. */
    struct stat st;
    assert_int_equal(stat(want, &st), 0);
    assert_true(S_ISBLK(st.st_mode));
    assert_int_equal(st.st_rdev, makedev(254, 16));
    /* Found again: the node is reused. */
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 1);
    /* Nothing at slot 04 yet. */
    assert_int_equal(ka_dev_query_pci_blk(&q, "04", &err), 0);
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 0);
}

static void test_find_refuses_wrong_node(void **state)
{
    (void)state;
    make_pci_tree(X86_ROOT, true);
    char node[256];
    snprintf(node, sizeof(node), "%s/vdc", dev);
    assert_int_equal(mknod(node, S_IFBLK | 0600, makedev(8, 0)), 0);
    struct ka_dev_query q;
    struct ka_dev_found f;
    struct ka_error err;
    assert_int_equal(ka_dev_query_pci_blk(&q, "03", &err), 0);
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), -1);
}

static void test_find_blk_name_scsi_pci_vfio(void **state)
{
    (void)state;
    make_pci_tree(RISCV_ROOT, true);
    struct ka_dev_query q;
    struct ka_dev_found f;
    struct ka_error err;
    /* mmioblk / nvdimm: by name through /sys/class/block */
    mkdirs("/sys/class/block/pmem0");
    put("/sys/class/block/pmem0/dev", "259:0\n");
    assert_int_equal(ka_dev_query_blk_name(&q, "/dev/pmem0", &err), 0);
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 1);
    assert_int_equal(f.major, 259);
    assert_int_equal(ka_dev_query_blk_name(&q, "/dev/vdz", &err), 0);
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 0);
    /* A disk without a medium is not ready. */
    mkdirs("/sys/class/block/loop9");
    put("/sys/class/block/loop9/dev", "7:9\n");
    put("/sys/class/block/loop9/size", "0\n");
    assert_int_equal(ka_dev_query_blk_name(&q, "/dev/loop9", &err), 0);
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 0);
    put("/sys/class/block/loop9/size", "2048\n");
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 1);
    assert_int_equal(ka_dev_query_blk_name(&q, "/dev/../etc/passwd", &err), -1);
    assert_int_equal(ka_dev_query_blk_name(&q, "vda", &err), -1);
    /* SCSI 0:0:<target>:<lun> */
    assert_int_equal(ka_dev_query_scsi(&q, "1:2", &err), 0);
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 0);
    mkdirs("/sys/bus/scsi/devices/0:0:1:2/block/sdb");
    put("/sys/bus/scsi/devices/0:0:1:2/block/sdb/dev", "8:16\n");
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 1);
    assert_int_equal(f.minor, 16);
    assert_int_equal(ka_dev_query_scsi(&q, "1", &err), -1);
    assert_int_equal(ka_dev_query_scsi(&q, "a:b", &err), -1);
    assert_int_equal(ka_dev_query_scsi(&q, "1:99999", &err), -1);
    /* A PCI function (vfio) */
    assert_int_equal(ka_dev_query_pci(&q, "02/00", &err), 0);
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 1);
    assert_string_equal(f.pci_addr, "0000:01:00.0");
    /* A vfio group node */
    assert_int_equal(ka_dev_query_vfio_group(&q, "7", &err), 0);
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 0);
    char node[256];
    snprintf(node, sizeof(node), "%s/vfio", dev);
    mkdir(node, 0755);
    strcat(node, "/7");
    assert_int_equal(mknod(node, S_IFCHR | 0600, makedev(243, 0)), 0);
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 1);
    assert_int_equal(f.major, 243);
    assert_false(f.is_block);
    assert_int_equal(ka_dev_query_vfio_group(&q, "x", &err), -1);
}

/* ---- matchers --------------------------------------------------------------------------------- */

/* The event lives in a static: its fields point into its own buffer, so it is
 * never copied by value. */
static struct ka_uevent *ev_of(const char *action, const char *devpath, const char *subsystem,
                               const char *devname)
{
    static struct ka_uevent ev;
    char buf[1024];
    size_t len = (size_t)snprintf(buf, sizeof(buf), "%s@%s", action, devpath) + 1;
    len += (size_t)snprintf(buf + len, sizeof(buf) - len, "SUBSYSTEM=%s", subsystem) + 1;
    if (devname)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "DEVNAME=%s", devname) + 1;
    assert_true(ka_uevent_parse(buf, len, &ev));
    return &ev;
}

static void test_match_riscv_virt(void **state)
{
    (void)state;
    make_pci_tree(RISCV_ROOT, true);
    struct ka_dev_query q;
    struct ka_error err;
    assert_int_equal(ka_dev_query_pci_blk(&q, "02/00", &err), 0);
    struct ka_uevent *ev =
        ev_of("add", RISCV_ROOT "/0000:00:02.0/0000:01:00.0/virtio7/block/vdb", "block", "vdb");
    assert_true(ka_device_match(&roots, &q, ev));
    /* A partition of it also says "look again". */
    ev = ev_of("add", RISCV_ROOT "/0000:00:02.0/0000:01:00.0/virtio7/block/vdb/vdb1", "block",
               "vdb1");
    assert_true(ka_device_match(&roots, &q, ev));
    ev = ev_of("remove", RISCV_ROOT "/0000:00:02.0/0000:01:00.0/virtio7/block/vdb", "block", "vdb");
    assert_false(ka_device_match(&roots, &q, ev));
    ev = ev_of("change", RISCV_ROOT "/0000:00:02.0/0000:01:00.0/virtio7/block/vdb", "block", "vdb");
    assert_true(ka_device_match(&roots, &q, ev)); /* its capacity came later */
    ev = ev_of("add", RISCV_ROOT "/0000:00:03.0/virtio4/block/vdc", "block", "vdc");
    assert_false(ka_device_match(&roots, &q, ev)); /* another slot */
    ev = ev_of("add", X86_ROOT "/0000:00:02.0/0000:01:00.0/virtio7/block/vdb", "block", "vdb");
    assert_false(ka_device_match(&roots, &q, ev)); /* the x86 layout is not this machine's */
    ev = ev_of("add", RISCV_ROOT "/0000:00:02.0/0000:01:00.0/virtio7/block/vdb", "block", NULL);
    assert_false(ka_device_match(&roots, &q, ev)); /* no DEVNAME */
    ev = ev_of("add", RISCV_ROOT "/0000:00:02.0/0000:01:00.0/virtio7", "virtio", NULL);
    assert_false(ka_device_match(&roots, &q, ev));
    ev = ev_of("add", RISCV_ROOT "/0000:00:02.0/0000:01:00.0/virtiox/block/vdb", "block", "vdb");
    assert_false(ka_device_match(&roots, &q, ev));

    /* The PCI function itself (vfio, net) */
    assert_int_equal(ka_dev_query_pci(&q, "02/00", &err), 0);
    ev = ev_of("add", RISCV_ROOT "/0000:00:02.0/0000:01:00.0", "pci", NULL);
    assert_true(ka_device_match(&roots, &q, ev));
    ev = ev_of("add", RISCV_ROOT "/0000:00:02.0/0000:01:00.1", "pci", NULL);
    assert_false(ka_device_match(&roots, &q, ev));
}

/* Interface.devicePath: the NIC's interface, in net/ of the PCI function or of its
 * virtio device, and the net uevent (with INTERFACE) that brings it. */
static void test_net_pci(void **state)
{
    (void)state;
    make_pci_tree(RISCV_ROOT, true);
    struct ka_dev_query q;
    struct ka_dev_found f;
    struct ka_error err;
    assert_int_equal(ka_dev_query_net_pci(&q, "02/00", &err), 0);
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 0); /* no interface yet */
    mkdirs("/sys" RISCV_ROOT "/0000:00:02.0/0000:01:00.0/net/enp1s0");
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 1);
    assert_string_equal(f.node, "enp1s0");
    assert_string_equal(f.pci_addr, "0000:01:00.0");
    /* virtio-net: below the virtio device. */
    assert_int_equal(ka_dev_query_net_pci(&q, "03", &err), 0);
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 0);
    mkdirs("/sys" RISCV_ROOT "/0000:00:03.0/virtio4/net/eth1");
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 1);
    assert_string_equal(f.node, "eth1");
    /* Not a PCI path: refused before any lookup (4.x's pxb-pcie "20/00/02" too). */
    assert_int_not_equal(ka_dev_query_net_pci(&q, "eth0", &err), 0);
    assert_int_equal(ka_error_status(&err), KA_STATUS_INVALID_ARGUMENT);
    assert_int_not_equal(ka_dev_query_net_pci(&q, "20/00/02", &err), 0);

    assert_int_equal(ka_dev_query_net_pci(&q, "03", &err), 0);
    static struct ka_uevent ev;
    static const char *const cases[][4] = {
        /* action, devpath, subsystem, interface; then whether it matches */
        {"add", RISCV_ROOT "/0000:00:03.0/virtio4/net/eth1", "net", "eth1"},
        {"add", RISCV_ROOT "/0000:00:03.0/virtio4/net/eth1", "net", NULL},
        {"remove", RISCV_ROOT "/0000:00:03.0/virtio4/net/eth1", "net", "eth1"},
        {"add", RISCV_ROOT "/0000:00:03.0/virtio4", "virtio", NULL},
        {"add", RISCV_ROOT "/0000:00:03.1/virtio5/net/eth2", "net", "eth2"},
        {"add", RISCV_ROOT "/0000:00:03.0", "net", "eth1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char buf[1024];
        size_t len = (size_t)snprintf(buf, sizeof(buf), "%s@%s", cases[i][0], cases[i][1]) + 1;
        len += (size_t)snprintf(buf + len, sizeof(buf) - len, "SUBSYSTEM=%s", cases[i][2]) + 1;
        if (cases[i][3])
            len += (size_t)snprintf(buf + len, sizeof(buf) - len, "INTERFACE=%s", cases[i][3]) + 1;
        assert_true(ka_uevent_parse(buf, len, &ev));
        if (ka_device_match(&roots, &q, &ev) != (i == 0))
            fail_msg("case %zu (%s %s) %s", i, cases[i][0], cases[i][1],
                     i == 0 ? "not matched" : "matched");
    }
}

static void test_match_other_kinds(void **state)
{
    (void)state;
    struct ka_dev_query q;
    struct ka_error err;
    assert_int_equal(ka_dev_query_scsi(&q, "0:3", &err), 0);
    struct ka_uevent *ev =
        ev_of("add", "/devices/pci0000:00/0000:00:05.0/virtio2/host0/target0:0:0/0:0:0:3/block/sdc",
              "block", "sdc");
    assert_true(ka_device_match(&roots, &q, ev));
    ev = ev_of("add",
               "/devices/pci0000:00/0000:00:05.0/virtio2/host0/target0:0:0/0:0:0:30/block/sdd",
               "block", "sdd");
    assert_false(ka_device_match(&roots, &q, ev));

    assert_int_equal(ka_dev_query_blk_name(&q, "/dev/vdd", &err), 0);
    ev = ev_of("add", "/devices/platform/10008000.virtio_mmio/virtio5/block/vdd", "block", "vdd");
    assert_true(ka_device_match(&roots, &q, ev));
    ev = ev_of("add", "/devices/platform/10008000.virtio_mmio/virtio5/block/vdd1", "block", "vdd1");
    assert_false(ka_device_match(&roots, &q, ev));

    assert_int_equal(ka_dev_query_vfio_group(&q, "12", &err), 0);
    ev = ev_of("add", "/devices/virtual/vfio/12", "vfio", "vfio/12");
    assert_true(ka_device_match(&roots, &q, ev));
    ev = ev_of("add", "/devices/virtual/vfio/1", "vfio", "vfio/1");
    assert_false(ka_device_match(&roots, &q, ev));
}

/* ---- scan, vfio, waiters, memory --------------------------------------------------------------- */

static void test_scsi_scan(void **state)
{
    (void)state;
    mkdirs("/sys/class/scsi_host/host0");
    mkdirs("/sys/class/scsi_host/host1");
    put("/sys/class/scsi_host/host0/scan", "");
    put("/sys/class/scsi_host/host1/scan", "");
    struct ka_dev_query q;
    struct ka_error err;
    assert_int_equal(ka_dev_query_scsi(&q, "2:5", &err), 0);
    ka_device_prepare(&roots, &q);
    char got[64];
    get("/sys/class/scsi_host/host0/scan", got, sizeof(got));
    assert_string_equal(got, "0 2 5");
    get("/sys/class/scsi_host/host1/scan", got, sizeof(got));
    assert_string_equal(got, "0 2 5");
}

static void test_vfio_bind(void **state)
{
    (void)state;
    make_pci_tree(RISCV_ROOT, true);
    const char *fn = "/sys" RISCV_ROOT "/0000:00:02.0/0000:01:00.0";
    char p[512];
    mkdirs("/sys/bus/pci/drivers/virtio-pci");
    put("/sys/bus/pci/drivers/virtio-pci/unbind", "");
    put("/sys/bus/pci/drivers_probe", "");
    snprintf(p, sizeof(p), "%s/driver", fn);
    char target[512];
    snprintf(target, sizeof(target), "%s/bus/pci/drivers/virtio-pci", sysfs);
    link_to(target, p);
    snprintf(p, sizeof(p), "%s/driver_override", fn);
    put(p, "");
    snprintf(p, sizeof(p), "%s/iommu_group", fn);
    link_to("../../../../../kernel/iommu_groups/5", p);

    struct ka_dev_query q;
    struct ka_dev_found f;
    struct ka_error err;
    assert_int_equal(ka_dev_query_pci(&q, "02/00", &err), 0);
    assert_int_equal(ka_device_find(&roots, &q, &f, &err), 1);
    unsigned group = 0;
    assert_int_equal(ka_device_vfio_bind(&roots, &f, &group, &err), 0);
    assert_int_equal(group, 5);
    char got[64];
    snprintf(p, sizeof(p), "%s/driver_override", fn);
    get(p, got, sizeof(got));
    assert_string_equal(got, "vfio-pci");
    get("/sys/bus/pci/drivers/virtio-pci/unbind", got, sizeof(got));
    assert_string_equal(got, "0000:01:00.0");
    get("/sys/bus/pci/drivers_probe", got, sizeof(got));
    assert_string_equal(got, "0000:01:00.0");
}

static int calls_a, calls_b;
static struct ka_uevent_waiter wa, wb;

static void on_a(struct ka_uevent_waiter *w, const struct ka_uevent *ev)
{
    (void)ev;
    calls_a++;
    ka_uevent_unwait(w);
    ka_uevent_unwait(&wb); /* a callback may drop another waiter */
}

static void on_b(struct ka_uevent_waiter *w, const struct ka_uevent *ev)
{
    (void)w, (void)ev;
    calls_b++;
}

static void test_waiters(void **state)
{
    (void)state;
    calls_a = calls_b = 0;
    ka_uevent_wait(&wb, on_b);
    ka_uevent_wait(&wa, on_a); /* head of the list: runs first */
    ka_uevent_deliver(NULL);
    assert_int_equal(calls_a, 1);
    assert_int_equal(calls_b, 0);
    assert_false(wa.listed);
    assert_false(wb.listed);
    ka_uevent_wait(&wb, on_b);
    ka_uevent_deliver(NULL);
    ka_uevent_deliver(NULL);
    assert_int_equal(calls_b, 2);
    ka_uevent_unwait(&wb);
    ka_uevent_unwait(&wb); /* idempotent */
    ka_uevent_deliver(NULL);
    assert_int_equal(calls_b, 2);
}

static void test_online_memory(void **state)
{
    (void)state;
    mkdirs("/sys/devices/system/memory/memory12");
    put("/sys/devices/system/memory/memory12/online", "0\n");
    mkdirs("/sys/devices/system/memory/memory13");
    put("/sys/devices/system/memory/memory13/online", "1\n");
    struct ka_uevent *ev = ev_of("add", "/devices/system/memory/memory12", "memory", NULL);
    ka_uevent_online_memory(sysfs, ev);
    char got[8];
    get("/sys/devices/system/memory/memory12/online", got, sizeof(got));
    assert_int_equal(got[0], '1');
    ev = ev_of("add", "/devices/system/memory/memory13", "memory", NULL);
    ka_uevent_online_memory(sysfs, ev); /* already online: left alone */
    get("/sys/devices/system/memory/memory13/online", got, sizeof(got));
    assert_string_equal(got, "1\n");
    /* Not memory: nothing written anywhere. */
    mkdirs("/sys/devices/system/cpu/cpu3");
    put("/sys/devices/system/cpu/cpu3/online", "0\n");
    ev = ev_of("add", "/devices/system/cpu/cpu3", "cpu", NULL);
    ka_uevent_online_memory(sysfs, ev);
    get("/sys/devices/system/cpu/cpu3/online", got, sizeof(got));
    assert_string_equal(got, "0\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uevent_parse),
        cmocka_unit_test(test_pci_path_parse),
        cmocka_unit_test_setup_teardown(test_root_bus_riscv_virt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_bus_by_search, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_bus_x86_and_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relpath_through_bridge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_blk_pci, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_refuses_wrong_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_blk_name_scsi_pci_vfio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_riscv_virt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_other_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_net_pci, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scsi_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vfio_bind, setup, teardown),
        cmocka_unit_test(test_waiters),
        cmocka_unit_test_setup_teardown(test_online_memory, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
