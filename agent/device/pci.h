/* Kata's PCI paths ("02/00": the slot on the root bus, then the slot on each
 * bridge's secondary bus, hex, optionally ".function") and where they lead in
 * sysfs. The root bus is found at run time: /devices/pci0000:00 on ACPI
 * machines, /devices/platform/soc/30000000.pci/pci0000:00 on riscv64 qemu
 * `virt`, something else elsewhere. Every function takes the sysfs root so the
 * unit tests can point it at a synthetic tree. */
#ifndef KA_DEVICE_PCI_H
#define KA_DEVICE_PCI_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define KA_PCI_PATH_MAX 16 /* bridges nest far less deep in practice */

struct ka_pci_path {
    unsigned n;
    uint8_t slot[KA_PCI_PATH_MAX]; /* 0..0x1f */
    uint8_t fn[KA_PCI_PATH_MAX];   /* 0..7 */
};

/* "02/01.3" -> {2,0}{1,3}. INVALID_ARGUMENT for anything else. */
int ka_pci_path_parse(const char *text, struct ka_pci_path *path, struct ka_error *err);

/* AddSwap's form: one slot per element, function 0. */
int ka_pci_path_from_slots(const uint32_t *slots, size_t n, struct ka_pci_path *path,
                           struct ka_error *err);

/* Write the root bus's devpath ("/devices/.../pci0000:00", as uevents name it)
 * into out. Found through <sysfs>/class/pci_bus/0000:00, or by searching
 * <sysfs>/devices a few levels deep. */
int ka_pci_root_bus(const char *sysfs, char *out, size_t size, struct ka_error *err);

/* The device's path below the root bus ("/0000:00:02.0/0000:01:01.3"), reading
 * each bridge's <sysfs><root_bus><relpath>/pci_bus/ for its secondary bus.
 * Returns 1 when resolved, 0 when a bridge on the way is not there (yet), -1
 * on error (a bridge with no or several secondary buses, a path too long). */
int ka_pci_relpath(const char *sysfs, const char *root_bus, const struct ka_pci_path *path,
                   char *out, size_t size, struct ka_error *err);

#endif
