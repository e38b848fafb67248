#include "device/pci.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int hex_digits(const char *s, size_t n, unsigned max, uint8_t *out)
{
    if (n == 0 || n > 2)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d == 16)
            return -1;
        v = v * 16 + d;
    }
    if (v > max)
        return -1;
    *out = (uint8_t)v;
    return 0;
}

int ka_pci_path_parse(const char *text, struct ka_pci_path *path, struct ka_error *err)
{
    memset(path, 0, sizeof(*path));
    const char *p = text;
    for (;;) {
        size_t len = strcspn(p, "/");
        const char *dot = memchr(p, '.', len);
        size_t slot_len = dot ? (size_t)(dot - p) : len;
        if (path->n == KA_PCI_PATH_MAX || hex_digits(p, slot_len, 0x1f, &path->slot[path->n]) < 0 ||
            (dot && hex_digits(dot + 1, len - slot_len - 1, 7, &path->fn[path->n]) < 0))
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT, "invalid PCI path '%.64s'",
                                       text);
        path->n++;
        if (p[len] == '\0')
            return 0;
        p += len + 1;
    }
}

int ka_pci_path_from_slots(const uint32_t *slots, size_t n, struct ka_pci_path *path,
                           struct ka_error *err)
{
    memset(path, 0, sizeof(*path));
    if (n == 0 || n > KA_PCI_PATH_MAX)
        return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                   "a PCI path has 1 to %d slots, not %zu", KA_PCI_PATH_MAX, n);
    for (size_t i = 0; i < n; i++) {
        if (slots[i] > 0x1f)
            return ka_error_status_set(err, KA_STATUS_INVALID_ARGUMENT,
                                       "invalid PCI slot %u (0 to 0x1f)", slots[i]);
        path->slot[i] = (uint8_t)slots[i];
    }
    path->n = (unsigned)n;
    return 0;
}

/* Depth-first search for a directory named pci0000:00 below dir. */
static bool find_root_below(char *dir, size_t size, int depth)
{
    cleanup_dir DIR *d = opendir(dir);
    if (!d)
        return false;
    size_t len = strlen(dir);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || de->d_type != DT_DIR)
            continue;
        if ((size_t)snprintf(dir + len, size - len, "/%s", de->d_name) >= size - len)
            continue;
        if (strcmp(de->d_name, "pci0000:00") == 0)
            return true;
        if (depth > 1 && find_root_below(dir, size, depth - 1))
            return true;
    }
    dir[len] = '\0';
    return false;
}

int ka_pci_root_bus(const char *sysfs, char *out, size_t size, struct ka_error *err)
{
    char link[4096], target[4096];
    snprintf(link, sizeof(link), "%s/class/pci_bus/0000:00", sysfs);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n > 0) {
        target[n] = '\0';
        /* "../../devices/<...>/pci0000:00/pci_bus/0000:00" */
        char *devices = strstr(target, "/devices/");
        char *tail = strstr(target, "/pci_bus/0000:00");
        if (devices && tail && tail > devices) {
            *tail = '\0';
            if ((size_t)snprintf(out, size, "%s", devices) < size)
                return 0;
        }
    }
    char dir[4096];
    if ((size_t)snprintf(dir, sizeof(dir), "%s/devices", sysfs) < sizeof(dir) &&
        find_root_below(dir, sizeof(dir), 4) &&
        (size_t)snprintf(out, size, "%s", dir + strlen(sysfs)) < size)
        return 0;
    return ka_error_status_set(err, KA_STATUS_NOT_FOUND,
                               "no PCI root bus (pci0000:00) under %s/devices", sysfs);
}

/* The one entry of <dir>/pci_bus/: a bridge's secondary bus ("0000:01"). */
static int secondary_bus(const char *dir, char *bus, size_t size, struct ka_error *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/pci_bus", dir) >= sizeof(path))
        return ka_error_set(err, ENAMETOOLONG, "PCI path too long");
    cleanup_dir DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : ka_error_set(err, errno, "open %s", path);
    struct dirent *de;
    int found = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (found++ || strlen(de->d_name) >= size)
            return ka_error_set(err, 0, "%s has more than one bus", path);
        strcpy(bus, de->d_name);
    }
    return found;
}

int ka_pci_relpath(const char *sysfs, const char *root_bus, const struct ka_pci_path *path,
                   char *out, size_t size, struct ka_error *err)
{
    char bus[64] = "0000:00";
    size_t len = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < path->n; i++) {
        int n = snprintf(out + len, size - len, "/%s:%02x.%x", bus, path->slot[i], path->fn[i]);
        if (n < 0 || (size_t)n >= size - len)
            return ka_error_set(err, ENAMETOOLONG, "PCI path too long");
        len += (size_t)n;
        if (i + 1 == path->n)
            break;
        char dir[4096];
        if ((size_t)snprintf(dir, sizeof(dir), "%s%s%s", sysfs, root_bus, out) >= sizeof(dir))
            return ka_error_set(err, ENAMETOOLONG, "PCI path too long");
        int rc = secondary_bus(dir, bus, sizeof(bus), err);
        if (rc <= 0)
            return rc;
    }
    return 1;
}
