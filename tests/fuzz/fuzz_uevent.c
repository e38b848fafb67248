/* libFuzzer: the uevent parser on arbitrary datagrams, then every device matcher
 * and the memory-onlining check on what it accepted (against a sysfs root that
 * does not exist, so nothing is written). Whatever the parser returns must point
 * inside its own copy, NUL-terminated, with a devpath safe to append to /sys. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "device/device.h"
#include "device/listener.h"
#include "device/uevent.h"

static void check_field(const struct ka_uevent *ev, const char *f)
{
    if (!f)
        return;
    if (f < ev->buf || f > ev->buf + KA_UEVENT_MAX ||
        !memchr(f, '\0', (size_t)(ev->buf + sizeof(ev->buf) - f)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ka_uevent ev;
    if (!ka_uevent_parse(data, size, &ev))
        return 0;
    const char *fields[] = {ev.action,  ev.devpath,   ev.subsystem, ev.devname,
                            ev.devtype, ev.interface, ev.driver};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        check_field(&ev, fields[i]);
    if (!ev.action || !ev.devpath || ev.devpath[0] != '/' || strstr(ev.devpath, "/../"))
        abort();

    static const struct ka_dev_roots roots = {.sysfs = "/nonexistent-ka-sysfs",
                                              .dev = "/nonexistent-ka-dev"};
    static struct ka_dev_query q[6];
    static int ready;
    if (!ready) {
        struct ka_error err;
        ka_dev_query_pci_blk(&q[0], "02/00", &err);
        ka_dev_query_blk_name(&q[1], "/dev/vdb", &err);
        ka_dev_query_scsi(&q[2], "0:1", &err);
        ka_dev_query_pci(&q[3], "01.2/03", &err);
        ka_dev_query_vfio_group(&q[4], "7", &err);
        ka_dev_query_blk_name(&q[5], "/dev/pmem0", &err);
        ready = 1;
    }
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++)
        (void)ka_device_match(&roots, &q[i], &ev);
    ka_uevent_online_memory(roots.sysfs, &ev);
    return 0;
}
