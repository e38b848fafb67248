/* The console as controlling tty, and the hostname (§5.1 step 5). */
#include "init/init.h"
#include "init/internal.h"

#include "core/log.h"
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

void ka_init_console_tty(void)
{
    /* The kernel starts init in session 0 with no controlling tty: make a session
     * of our own and take the console (stdin) as its tty, so Ctrl-C and hang-ups on
     * it reach PID 1 (which ignores them) rather than nobody. Steal it (arg 1) if a
     * previous owner left it attached. */
    if (setsid() < 0)
        ka_log(KA_LOG_DEBUG, "init", "setsid: %s", strerror(errno));
    if (ioctl(STDIN_FILENO, TIOCSCTTY, 1) < 0)
        ka_log(KA_LOG_DEBUG, "init", "TIOCSCTTY on stdin: %s", strerror(errno));
}

void ka_init_hostname_parse(const char *text, char *out, size_t size)
{
    const char *p = text ? text : "";
    while (*p && isspace((unsigned char)*p))
        p++;
    size_t n = 0;
    while (p[n] && !isspace((unsigned char)p[n]))
        n++;
    if (n == 0)
        p = "localhost", n = strlen(p);
    if (n >= size)
        n = size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

int ka_init_hostname_at(const char *root, struct ka_error *err)
{
    char path[PATH_MAX];
    if (ka_init_path(path, sizeof(path), root, "/etc/hostname") < 0)
        return ka_error_set(err, ENAMETOOLONG, "/etc/hostname under %s", root);
    size_t len;
    cleanup_free char *text = ka_init_read_file(path, 4096, &len);
    if (!text && errno != ENOENT)
        ka_log(KA_LOG_DEBUG, "init", "read %s: %s", path, strerror(errno));
    char name[65]; /* HOST_NAME_MAX + 1 */
    ka_init_hostname_parse(text, name, sizeof(name));
    if (sethostname(name, strlen(name)) < 0)
        return ka_error_set(err, errno, "sethostname %s", name);
    return 0;
}
