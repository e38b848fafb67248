#include <stdint.h>
#include <stddef.h>
#include "rpc/oci_convert.h"
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Grpc__Spec *in = grpc__spec__unpack(NULL, size, data);
    if (!in)
        return 0;
    struct ka_spec *s = NULL;
    struct ka_error err = {0};
    if (ka_spec_from_proto(in, &s, &err) == 0)
        ka_spec_free(s);
    if (in->process) {
        struct ka_process p;
        if (ka_process_from_proto(in->process, &p, &err) == 0)
            ka_process_free(&p);
    }
    grpc__spec__free_unpacked(in, NULL);
    return 0;
}
