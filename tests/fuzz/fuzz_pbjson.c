#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "json.h"
#include "pbjson.h"
#include "pbjson_test.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ka_error err;
    struct json_object *v = NULL;
    /* agent-ctl's bounds on json-c, and its writer: what it writes it reads back
     * the same. */
    if (ctl_json_parse((const char *)data, size, &v, &err) == 0) {
        char *a = ctl_json_write(v, false), *b = ctl_json_write(v, true);
        struct json_object *v2 = NULL;
        if (ctl_json_parse(a, strlen(a), &v2, &err) != 0)
            abort();
        char *a2 = ctl_json_write(v2, false);
        if (strcmp(a, a2) != 0)
            abort();
        free(a);
        free(b);
        free(a2);
        json_object_put(v2);
        json_object_put(v);
    }
    const ProtobufCMessageDescriptor *descs[] = {&pbjsontest__all_types__descriptor,
                                                 &pbjsontest__node__descriptor};
    for (int d = 0; d < 2; d++) {
        ProtobufCMessage *m = NULL;
        if (pbjson_to_message(descs[d], (const char *)data, size, &m, &err) == 0) {
            for (unsigned fl = 0; fl < 4; fl++) {
                char *j = pbjson_from_message(m, fl);
                if (!j)
                    abort();
                ProtobufCMessage *m2 = NULL;
                if (pbjson_to_message(descs[d], j, strlen(j), &m2, &err) != 0) {
                    fprintf(stderr, "%s\n%s\n", j, err.msg);
                    abort();
                }
                size_t l1 = protobuf_c_message_get_packed_size(m),
                       l2 = protobuf_c_message_get_packed_size(m2);
                if (l1 != l2)
                    abort();
                uint8_t *p1 = malloc(l1 + 1), *p2 = malloc(l2 + 1);
                protobuf_c_message_pack(m, p1);
                protobuf_c_message_pack(m2, p2);
                if (memcmp(p1, p2, l1) != 0) {
                    fprintf(stderr, "%s\n", j);
                    abort();
                }
                free(p1);
                free(p2);
                free(j);
                protobuf_c_message_free_unpacked(m2, NULL);
            }
            protobuf_c_message_free_unpacked(m, NULL);
        }
    }
    return 0;
}
