#include "device/uevent.h"

#include <stdlib.h>
#include <string.h>

/* sysfs paths are built from DEVPATH, so it must name something below /sys. */
static bool devpath_ok(const char *p)
{
    size_t n = strlen(p);
    if (p[0] != '/' || strstr(p, "/../") || strstr(p, "//"))
        return false;
    return !(n >= 3 && strcmp(p + n - 3, "/..") == 0);
}

static void set_field(struct ka_uevent *ev, const char *key, const char *value)
{
    static const struct {
        const char *key;
        size_t offset;
    } fields[] = {
        {"ACTION", offsetof(struct ka_uevent, action)},
        {"DEVPATH", offsetof(struct ka_uevent, devpath)},
        {"SUBSYSTEM", offsetof(struct ka_uevent, subsystem)},
        {"DEVNAME", offsetof(struct ka_uevent, devname)},
        {"DEVTYPE", offsetof(struct ka_uevent, devtype)},
        {"INTERFACE", offsetof(struct ka_uevent, interface)},
        {"DRIVER", offsetof(struct ka_uevent, driver)},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (strcmp(key, fields[i].key) == 0) {
            *(const char **)((char *)ev + fields[i].offset) = value;
            return;
        }
    if (strcmp(key, "SEQNUM") == 0)
        ev->seqnum = strtoull(value, NULL, 10);
}

bool ka_uevent_parse(const void *data, size_t len, struct ka_uevent *ev)
{
    ev->action = ev->devpath = ev->subsystem = ev->devname = NULL;
    ev->devtype = ev->interface = ev->driver = NULL;
    ev->seqnum = 0;
    if (len == 0 || len > KA_UEVENT_MAX)
        return false;
    memcpy(ev->buf, data, len);
    ev->buf[len] = '\0';
    /* The header is "action@devpath"; udev's re-broadcasts start "libudev\0" and
     * have no '@' in their first record. */
    size_t hdr_len = strlen(ev->buf);
    char *at = memchr(ev->buf, '@', hdr_len);
    if (!at || at == ev->buf)
        return false;
    *at = '\0';
    const char *hdr_action = ev->buf, *hdr_path = at + 1;
    for (size_t off = hdr_len + 1; off < len;) {
        char *rec = ev->buf + off;
        size_t rec_len = strlen(rec);
        off += rec_len + 1;
        if (rec_len == 0)
            continue;
        char *eq = strchr(rec, '=');
        if (!eq || eq == rec)
            return false;
        *eq = '\0';
        set_field(ev, rec, eq + 1);
    }
    if (!ev->action)
        ev->action = hdr_action;
    if (!ev->devpath)
        ev->devpath = hdr_path;
    return ev->action[0] != '\0' && devpath_ok(ev->devpath);
}
