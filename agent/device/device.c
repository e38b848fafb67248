#include "device/device.h"
#include "core/log.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* snprintf into an array, true when it all fit (sysfs paths are short; a
 * truncated one is treated as absent, never used). */
#define FITS(buf, ...) ((size_t)snprintf((buf), sizeof(buf), __VA_ARGS__) < sizeof(buf))

const struct ka_dev_roots ka_dev_real_roots = {.sysfs = "/sys", .dev = "/dev"};

static void set_arg(struct ka_dev_query *q, enum ka_dev_kind kind, const char *arg)
{
    memset(q, 0, sizeof(*q));
    q->kind = kind;
    snprintf(q->arg, sizeof(q->arg), "%s", arg);
}

int ka_dev_query_pci_blk(struct ka_dev_query *q, const char *pci_path, struct ka_error *err)
{
    set_arg(q, KA_DEV_BLK_PCI, pci_path);
    return ka_pci_path_parse(pci_path, &q->pci, err);
}

int ka_dev_query_pci(struct ka_dev_query *q, const char *pci_path, struct ka_error *err)
{
    set_arg(q, KA_DEV_PCI, pci_path);
    return ka_pci_path_parse(pci_path, &q->pci, err);
}

int ka_dev_query_net_pci(struct ka_dev_query *q, const char *pci_path, struct ka_error *err)
{
    set_arg(q, KA_DEV_NET_PCI, pci_path);
    return ka_pci_path_parse(pci_path, &q->pci, err);
}

/* A kernel device name: what may follow /dev/ ("vdb", "mapper/x" is not one). */
static bool valid_devname(const char *s)
{
    if (!*s || strlen(s) >= KA_DEV_ARG_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (; *s; s++)
        if (*s == '/' || *s < 0x21 || *s > 0x7e)
            return false;
    return true;
}

int ka_dev_query_blk_name(struct ka_dev_query *q, const char *node, struct ka_error *err)
{
    set_arg(q, KA_DEV_BLK_NAME, node);
    if (strncmp(node, "/dev/", 5) != 0 || !valid_devname(node + 5))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "invalid block device '%.64s' (want /dev/<name>)", node);
    snprintf(q->name, sizeof(q->name), "%s", node + 5);
    return 0;
}

static bool parse_uint(const char *s, size_t n, unsigned max, unsigned *out)
{
    if (n == 0 || n > 9)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return v <= max;
}

int ka_dev_query_scsi(struct ka_dev_query *q, const char *addr, struct ka_error *err)
{
    set_arg(q, KA_DEV_SCSI, addr);
    const char *colon = strchr(addr, ':');
    /* SCSI targets and LUNs as the kernel's scan interface takes them. */
    if (!colon || !parse_uint(addr, (size_t)(colon - addr), 65535, &q->scsi_target) ||
        !parse_uint(colon + 1, strlen(colon + 1), 16383, &q->scsi_lun))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "invalid SCSI address '%.64s' (want target:lun)", addr);
    return 0;
}

int ka_dev_query_vfio_group(struct ka_dev_query *q, const char *group, struct ka_error *err)
{
    set_arg(q, KA_DEV_VFIO_GROUP, group);
    unsigned g;
    if (!parse_uint(group, strlen(group), 1u << 20, &g))
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "invalid VFIO group '%.64s'",
                                   group);
    snprintf(q->name, sizeof(q->name), "%u", g);
    return 0;
}

/* <dir>/dev holds "major:minor\n". */
static int read_devnum(const char *dir, unsigned *major, unsigned *minor)
{
    char path[1024], buf[32];
    if (!FITS(path, "%s/dev", dir))
        return -1;
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return sscanf(buf, "%u:%u", major, minor) == 2 ? 0 : -1;
}

/* The block device <name> whose sysfs dir is <dir>: fill f, creating the node
 * when /dev has none (no devtmpfs) and refusing one of another device. */
static int found_block(const struct ka_dev_roots *roots, const char *dir, const char *name,
                       struct ka_dev_found *f, struct ka_error *err)
{
    if (read_devnum(dir, &f->major, &f->minor) < 0)
        return 0; /* not fully there yet */
    /* A disk without a medium yet (an unattached loop device, a drive whose
     * capacity comes with a later "change" event) cannot be mounted: wait. */
    char path[1100], size[32] = "";
    if (FITS(path, "%s/size", dir)) {
        cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && read(fd, size, sizeof(size) - 1) > 0 && strtoull(size, NULL, 10) == 0)
            return 0;
    }
    f->is_block = true;
    if ((size_t)snprintf(f->node, sizeof(f->node), "%s/%s", roots->dev, name) >= sizeof(f->node))
        return ka_error_set(err, ENAMETOOLONG, "device node for %s", name);
    struct stat st;
    dev_t want = makedev(f->major, f->minor);
    if (stat(f->node, &st) == 0) {
        if (!S_ISBLK(st.st_mode) || st.st_rdev != want)
            return ka_error_set(err, 0, "%s is not block device %u:%u", f->node, f->major,
                                f->minor);
        return 1;
    }
    if (errno != ENOENT || mknod(f->node, S_IFBLK | 0600, want) < 0)
        return ka_error_set(err, errno, "create %s", f->node);
    return 1;
}

/* The first entry of <dir> whose name starts with prefix (and, for "virtio",
 * continues with digits); false when none. */
static bool first_entry(const char *dir, const char *prefix, char *name, size_t size)
{
    cleanup_dir DIR *d = opendir(dir);
    if (!d)
        return false;
    size_t plen = strlen(prefix);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || strncmp(de->d_name, prefix, plen) != 0)
            continue;
        if (plen && strspn(de->d_name + plen, "0123456789") != strlen(de->d_name + plen))
            continue;
        if (strlen(de->d_name) < size) {
            strcpy(name, de->d_name);
            return true;
        }
    }
    return false;
}

/* <root_bus><relpath> of a PCI query: 1, or 0 while a bridge is missing. */
static int pci_devpath(const struct ka_dev_roots *roots, const struct ka_pci_path *p, char *out,
                       size_t size, struct ka_error *err)
{
    char root[1024], rel[1024];
    if (ka_pci_root_bus(roots->sysfs, root, sizeof(root), err) < 0)
        return -1;
    int rc = ka_pci_relpath(roots->sysfs, root, p, rel, sizeof(rel), err);
    if (rc <= 0)
        return rc;
    if ((size_t)snprintf(out, size, "%s%s", root, rel) >= size)
        return ka_error_set(err, ENAMETOOLONG, "PCI device path");
    return 1;
}

static int find_blk_pci(const struct ka_dev_roots *roots, const struct ka_dev_query *q,
                        struct ka_dev_found *f, struct ka_error *err)
{
    char devpath[1024], dir[2048], virtio[64], name[256];
    int rc = pci_devpath(roots, &q->pci, devpath, sizeof(devpath), err);
    if (rc <= 0)
        return rc;
    if (!FITS(dir, "%s%s", roots->sysfs, devpath) ||
        !first_entry(dir, "virtio", virtio, sizeof(virtio)))
        return 0;
    if (!FITS(dir, "%s%s/%s/block", roots->sysfs, devpath, virtio) ||
        !first_entry(dir, "", name, sizeof(name)))
        return 0;
    if (!FITS(dir, "%s%s/%s/block/%s", roots->sysfs, devpath, virtio, name))
        return 0;
    return found_block(roots, dir, name, f, err);
}

static int find_blk_name(const struct ka_dev_roots *roots, const struct ka_dev_query *q,
                         struct ka_dev_found *f, struct ka_error *err)
{
    char dir[1024];
    if (!FITS(dir, "%s/class/block/%s", roots->sysfs, q->name))
        return 0;
    return found_block(roots, dir, q->name, f, err);
}

static int find_scsi(const struct ka_dev_roots *roots, const struct ka_dev_query *q,
                     struct ka_dev_found *f, struct ka_error *err)
{
    char dir[1024], name[256], devdir[1400];
    if (!FITS(dir, "%s/bus/scsi/devices/0:0:%u:%u/block", roots->sysfs, q->scsi_target,
              q->scsi_lun) ||
        !first_entry(dir, "", name, sizeof(name)) || !FITS(devdir, "%s/%s", dir, name))
        return 0;
    return found_block(roots, devdir, name, f, err);
}

static int find_pci(const struct ka_dev_roots *roots, const struct ka_dev_query *q,
                    struct ka_dev_found *f, struct ka_error *err)
{
    char devpath[1024];
    int rc = pci_devpath(roots, &q->pci, devpath, sizeof(devpath), err);
    if (rc <= 0)
        return rc;
    if (!FITS(f->node, "%s%s", roots->sysfs, devpath) || access(f->node, F_OK) < 0)
        return 0;
    snprintf(f->pci_addr, sizeof(f->pci_addr), "%s", strrchr(devpath, '/') + 1);
    return 1;
}

/* A NIC's interface sits in net/ of its PCI function (most drivers) or of the
 * virtio device below it (virtio-net): <fn>/net/<if> or <fn>/virtioN/net/<if>. */
static int find_net_pci(const struct ka_dev_roots *roots, const struct ka_dev_query *q,
                        struct ka_dev_found *f, struct ka_error *err)
{
    char devpath[1024], dir[2048], virtio[64], name[256];
    int rc = pci_devpath(roots, &q->pci, devpath, sizeof(devpath), err);
    if (rc <= 0)
        return rc;
    bool found =
        FITS(dir, "%s%s/net", roots->sysfs, devpath) && first_entry(dir, "", name, sizeof(name));
    if (!found && FITS(dir, "%s%s", roots->sysfs, devpath) &&
        first_entry(dir, "virtio", virtio, sizeof(virtio)) &&
        FITS(dir, "%s%s/%s/net", roots->sysfs, devpath, virtio))
        found = first_entry(dir, "", name, sizeof(name));
    if (!found || !FITS(f->node, "%s", name))
        return 0;
    snprintf(f->pci_addr, sizeof(f->pci_addr), "%s", strrchr(devpath, '/') + 1);
    return 1;
}

static int find_vfio_group(const struct ka_dev_roots *roots, const struct ka_dev_query *q,
                           struct ka_dev_found *f, struct ka_error *err)
{
    if (!FITS(f->node, "%s/vfio/%s", roots->dev, q->name))
        return 0;
    struct stat st;
    if (stat(f->node, &st) < 0)
        return errno == ENOENT ? 0 : ka_error_set(err, errno, "stat %s", f->node);
    if (!S_ISCHR(st.st_mode))
        return ka_error_set(err, 0, "%s is not a character device", f->node);
    f->major = major(st.st_rdev);
    f->minor = minor(st.st_rdev);
    return 1;
}

int ka_device_find(const struct ka_dev_roots *roots, const struct ka_dev_query *q,
                   struct ka_dev_found *f, struct ka_error *err)
{
    memset(f, 0, sizeof(*f));
    switch (q->kind) {
    case KA_DEV_BLK_PCI:
        return find_blk_pci(roots, q, f, err);
    case KA_DEV_BLK_NAME:
        return find_blk_name(roots, q, f, err);
    case KA_DEV_SCSI:
        return find_scsi(roots, q, f, err);
    case KA_DEV_PCI:
        return find_pci(roots, q, f, err);
    case KA_DEV_VFIO_GROUP:
        return find_vfio_group(roots, q, f, err);
    case KA_DEV_NET_PCI:
        return find_net_pci(roots, q, f, err);
    }
    return ka_error_set(err, 0, "unknown device kind %d", (int)q->kind);
}

/* "<prefix>virtio<digits>/block/..." */
static bool under_virtio_block(const char *devpath, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(devpath, prefix, n) != 0 || strncmp(devpath + n, "/virtio", 7) != 0)
        return false;
    const char *p = devpath + n + 7;
    size_t digits = strspn(p, "0123456789");
    return digits > 0 && strncmp(p + digits, "/block/", 7) == 0;
}

bool ka_device_match(const struct ka_dev_roots *roots, const struct ka_dev_query *q,
                     const struct ka_uevent *ev)
{
    if (!ev->action || !ev->devpath)
        return false;
    bool add = strcmp(ev->action, "add") == 0;
    /* A disk also comes of age with "change" (its capacity set after the add). */
    bool block = (add || strcmp(ev->action, "change") == 0) && ev->subsystem &&
                 strcmp(ev->subsystem, "block") == 0 && ev->devname && ev->devname[0];
    if (!add && !block)
        return false;
    char want[1024];
    struct ka_error err;
    switch (q->kind) {
    case KA_DEV_BLK_PCI:
        return block && pci_devpath(roots, &q->pci, want, sizeof(want), &err) == 1 &&
               under_virtio_block(ev->devpath, want);
    case KA_DEV_BLK_NAME:
        return block && strcmp(ev->devname, q->name) == 0;
    case KA_DEV_SCSI:
        snprintf(want, sizeof(want), "/0:0:%u:%u/block/", q->scsi_target, q->scsi_lun);
        return block && strstr(ev->devpath, want) != NULL;
    case KA_DEV_PCI:
        return add && pci_devpath(roots, &q->pci, want, sizeof(want), &err) == 1 &&
               strcmp(ev->devpath, want) == 0;
    case KA_DEV_VFIO_GROUP:
        snprintf(want, sizeof(want), "/devices/virtual/vfio/%s", q->name);
        return add && strcmp(ev->devpath, want) == 0;
    case KA_DEV_NET_PCI:
        /* Upstream's NetPciMatcher: a net "add" with an interface, below the NIC. */
        if (!add || !ev->subsystem || strcmp(ev->subsystem, "net") != 0 || !ev->interface ||
            !ev->interface[0] || pci_devpath(roots, &q->pci, want, sizeof(want), &err) != 1)
            return false;
        return strncmp(ev->devpath, want, strlen(want)) == 0 && ev->devpath[strlen(want)] == '/';
    }
    return false;
}

static int write_file(const char *path, const char *text)
{
    cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = strlen(text);
    return write(fd, text, n) == (ssize_t)n ? 0 : -1;
}

void ka_device_prepare(const struct ka_dev_roots *roots, const struct ka_dev_query *q)
{
    if (q->kind != KA_DEV_SCSI)
        return;
    char dir[1024], path[1400], scan[64];
    snprintf(dir, sizeof(dir), "%s/class/scsi_host", roots->sysfs);
    snprintf(scan, sizeof(scan), "0 %u %u", q->scsi_target, q->scsi_lun);
    cleanup_dir DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (strncmp(de->d_name, "host", 4) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s/scan", dir, de->d_name);
        if (write_file(path, scan) < 0)
            ka_log(KA_LOG_WARN, "device", "scan %s: %s", path, strerror(errno));
    }
}

int ka_device_vfio_bind(const struct ka_dev_roots *roots, const struct ka_dev_found *f,
                        unsigned *group, struct ka_error *err)
{
    char path[1200], target[512];
    snprintf(path, sizeof(path), "%s/driver", f->node);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    const char *driver = NULL;
    if (n > 0) {
        target[n] = '\0';
        driver = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
    }
    if (!driver || strcmp(driver, "vfio-pci") != 0) {
        snprintf(path, sizeof(path), "%s/driver_override", f->node);
        if (write_file(path, "vfio-pci") < 0)
            return ka_error_set(err, errno, "write %s", path);
        if (driver) {
            snprintf(path, sizeof(path), "%s/driver/unbind", f->node);
            if (write_file(path, f->pci_addr) < 0)
                return ka_error_set(err, errno, "unbind %s from %s", f->pci_addr, driver);
        }
        snprintf(path, sizeof(path), "%s/bus/pci/drivers_probe", roots->sysfs);
        if (write_file(path, f->pci_addr) < 0)
            return ka_error_set(err, errno, "bind %s to vfio-pci", f->pci_addr);
    }
    snprintf(path, sizeof(path), "%s/iommu_group", f->node);
    n = readlink(path, target, sizeof(target) - 1);
    if (n <= 0)
        return ka_error_set(err, errno, "%s has no IOMMU group", f->pci_addr);
    target[n] = '\0';
    const char *base = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
    if (!parse_uint(base, strlen(base), 1u << 20, group))
        return ka_error_set(err, 0, "%s: unexpected IOMMU group '%.32s'", f->pci_addr, base);
    return 0;
}
