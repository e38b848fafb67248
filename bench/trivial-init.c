/* trivial-init: the reference /init of bench/boot.sh. It does only what any init must
 * (be PID 1, say something on the console, end the VM), so that "qemu start -> this
 * marker" is the cost of qemu, firmware and kernel, and our agent's boot time minus it
 * is the agent's own. Static riscv64, built by bench/boot.sh with the project's
 * riscv64 sysroot. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/reboot.h>
#include <termios.h>
#include <unistd.h>

#define MARKER "ka-trivial-init: up\n"

int main(void)
{
    /* fd 1 is /dev/console (the kernel opens it for init): the serial port. */
    (void)!write(STDOUT_FILENO, MARKER, strlen(MARKER));
    /* The UART sends from a buffer in the background; power off only once the marker
     * has left it, or the host may never see it. */
    tcdrain(STDOUT_FILENO);
    reboot(RB_POWER_OFF);
    return 1; /* only if reboot failed; the kernel then panics (panic=1 reboots, and
               * qemu's -no-reboot ends the VM) */
}
