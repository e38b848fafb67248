/* libFuzzer: the kernel command-line parser on arbitrary text. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet = -1;
    if (quiet < 0) {
        quiet = open("/dev/null", O_WRONLY);
        ka_log_set_fd(quiet);
    }
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    struct ka_config cfg;
    ka_config_defaults(&cfg);
    ka_config_parse_cmdline(&cfg, text);
    if (strlen(cfg.server_addr) >= sizeof(cfg.server_addr))
        abort();
    free(text);
    return 0;
}
