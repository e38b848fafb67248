/* libFuzzer: path resolution inside a root. A scratch root holds the traps a
 * container can plant (symlinks to /, to .., absolute and relative, a loop, a
 * magic link); whatever path the input names, a resolved fd must lie inside the
 * root, with openat2 and with the fallback walk alike. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/path.h"

static int rootfd = -1;
static char root[64];

static void remove_root(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

static void setup(void)
{
    snprintf(root, sizeof(root), "/tmp/ka-fuzz-root-XXXXXX");
    if (!mkdtemp(root))
        abort();
    char p[256];
    const char *dirs[] = {"a", "a/b", "etc", "proc"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", root, dirs[i]);
        mkdir(p, 0755);
    }
    const char *links[][2] = {
        {"/", "to-root"},   {"..", "a/up"},     {"../..", "a/b/upup"},        {"/etc", "abs-etc"},
        {"loop1", "loop2"}, {"loop2", "loop1"}, {"/proc/self/root", "magic"}, {"b", "a/rel"}};
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", root, links[i][1]);
        symlink(links[i][0], p);
    }
    snprintf(p, sizeof(p), "%s/a/b/file", root);
    close(open(p, O_CREAT | O_WRONLY, 0644));
    rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        abort();
    atexit(remove_root);
}

static void check_inside(int fd)
{
    char link[64], target[4096];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n < 0)
        abort();
    target[n] = '\0';
    size_t rl = strlen(root);
    if (strncmp(target, root, rl) != 0 || (target[rl] != '\0' && target[rl] != '/')) {
        fprintf(stderr, "escaped the root: %s\n", target);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (rootfd < 0)
        setup();
    if (size > 1024)
        return 0;
    char path[1025];
    memcpy(path, data, size);
    path[size] = '\0';
    for (int mode = 0; mode < 2; mode++) {
        ka_path_set_openat2(mode == 0);
        struct ka_error err;
        int fd = ka_openat_in_root(rootfd, path, O_PATH | O_CLOEXEC, 0, &err);
        if (fd >= 0) {
            check_inside(fd);
            close(fd);
        }
    }
    return 0;
}
