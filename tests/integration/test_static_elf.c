/* The guest binary really is what we ship: a static ELF for the expected machine
 * (no PT_INTERP, no PT_DYNAMIC). Usage: test_static_elf FILE MACHINE-NUMBER */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s FILE MACHINE\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        fprintf(stderr,
                "FAIL: cannot open %s (build the riscv64 preset first: "
                "cmake --preset riscv64 && cmake --build --preset riscv64)\n",
                argv[1]);
        return 1;
    }
    Elf64_Ehdr eh;
    if (fread(&eh, sizeof(eh), 1, f) != 1 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64) {
        fprintf(stderr, "FAIL: %s is not a 64-bit ELF file\n", argv[1]);
        fclose(f);
        return 1;
    }
    int want = atoi(argv[2]);
    if (eh.e_machine != want) {
        fprintf(stderr, "FAIL: e_machine %u, expected %d\n", eh.e_machine, want);
        fclose(f);
        return 1;
    }
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (fseek(f, (long)(eh.e_phoff + (Elf64_Off)i * eh.e_phentsize), SEEK_SET) != 0 ||
            fread(&ph, sizeof(ph), 1, f) != 1) {
            fprintf(stderr, "FAIL: truncated program headers\n");
            fclose(f);
            return 1;
        }
        if (ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC) {
            fprintf(stderr, "FAIL: %s is dynamically linked\n", argv[1]);
            fclose(f);
            return 1;
        }
    }
    fclose(f);
    printf("ok: %s is a static ELF64 for machine %d\n", argv[1], want);
    return 0;
}
