/* Helpers shared by the init/ files; not part of the agent's interface. */
#ifndef KA_INIT_INTERNAL_H
#define KA_INIT_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>

/* root + path into out ("" or "/" root = path itself). 0 or -ENAMETOOLONG. */
int ka_init_path(char *out, size_t size, const char *root, const char *path);

/* mkdir -p. 0 or -errno. */
int ka_init_mkdir_p(const char *path, mode_t mode);

/* Read a whole small file into a fresh NUL-terminated buffer of at most max bytes
 * (more is an error, -EFBIG). Returns the buffer (free it) or NULL with errno set. */
char *ka_init_read_file(const char *path, size_t max, size_t *len);

#endif
