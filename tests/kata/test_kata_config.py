#!/usr/bin/env python3
"""The Kata runtime configuration files of the install tree, parsed as the runtime
parses them (TOML) and checked against what the runtimes read.

Usage:
  test_kata_config.py --generate          run image-builder/kata-config.sh --arch A into
                                          a temporary directory for each of riscv64,
                                          x86_64 and aarch64 and check its four files
  test_kata_config.py --installed PREFIX  check the files of a tree install.sh put at
                                          PREFIX (its arch from the tree's manifest),
                                          and that every path they name exists in
                                          that tree

Checks: only sections and keys the runtime of that file reads (the Go runtime's
src/runtime/pkg/katautils/config.go at both 3.3.0 and 4.1.0; runtime-rs'
src/libs/kata-types/src/config/ at 4.1.0); exactly one of initrd and image; the
architecture's values as Kata 4.1.0 has them (machine type, qemu, CPU features, kernel
parameters, machine accelerators, the kernel's name and kind, no NVDIMM for an image);
virtio-fs with a daemon the file also lists as valid.
"""
import os
import subprocess
import sys
import tempfile
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))

# Keys the Go runtime reads in the sections these files use (toml tags of the
# hypervisor, agent and runtime structs in katautils/config.go, present at both 3.3.0
# and 4.1.0; only the ones a qemu configuration may reasonably hold).
GO_KEYS = {
    "hypervisor": {
        "path", "kernel", "initrd", "image", "firmware", "firmware_volume", "machine_type",
        "machine_accelerators", "cpu_features", "kernel_params", "default_vcpus",
        "default_maxvcpus", "default_memory", "default_maxmemory", "default_bridges",
        "memory_slots", "memory_offset", "disable_block_device_use", "shared_fs",
        "virtio_fs_daemon", "valid_virtio_fs_daemon_paths", "virtio_fs_cache_size",
        "virtio_fs_queue_size", "virtio_fs_extra_args", "virtio_fs_cache", "msize_9p",
        "block_device_driver", "block_device_aio", "block_device_cache_set",
        "block_device_cache_direct", "block_device_cache_noflush", "enable_iothreads",
        "enable_mem_prealloc", "enable_hugepages", "enable_virtio_mem", "disable_image_nvdimm",
        "rootfs_type", "valid_hypervisor_paths", "valid_entropy_sources", "entropy_source",
        "enable_debug", "disable_nesting_checks", "disable_vhost_net", "disable_selinux",
        "disable_guest_selinux", "hot_plug_vfio", "cold_plug_vfio", "pflashes",
        "enable_annotations", "guest_hook_path", "rootless", "use_legacy_serial",
        "enable_guest_swap", "seccompsandbox", "extra_monitor_socket",
    },
    "agent": {"enable_debug", "debug_console_enabled", "dial_timeout", "enable_tracing",
              "kernel_modules"},
    "runtime": {
        "enable_debug", "internetworking_model", "disable_guest_seccomp", "sandbox_cgroup_only",
        "static_sandbox_resource_mgmt", "disable_new_netns", "experimental", "enable_tracing",
        "enable_pprof", "sandbox_bind_mounts", "vfio_mode", "disable_guest_empty_dir",
        "enable_vcpus_pinning", "jaeger_endpoint", "jaeger_user", "jaeger_password",
        "guest_selinux_label",
    },
}
# runtime-rs 4.1 (kata-types: hypervisor/mod.rs, agent.rs, runtime.rs; the keys the files
# use are also there at 3.3.0; enable_debug is
# the serde name of agent's and runtime's `debug`).
RS_KEYS = {
    "hypervisor": (GO_KEYS["hypervisor"] - {"firmware_volume", "msize_9p", "use_legacy_serial",
                                            "seccompsandbox", "hot_plug_vfio"})
    | {"vm_rootfs_driver", "seccomp_sandbox", "pcie_root_port", "reclaim_guest_freed_memory"},
    "agent": {"enable_debug", "debug_console_enabled", "dial_timeout_ms", "enable_tracing",
              "kernel_modules", "container_pipe_size", "log_port", "server_port"},
    "runtime": (GO_KEYS["runtime"] - {"disable_guest_empty_dir", "guest_selinux_label"})
    | {"name", "hypervisor_name", "agent_name"},
}

CGV2 = ["cgroup_no_v1=all", "systemd.unified_cgroup_hierarchy=1"]


def is_riscv64_image(head):
    return head[56:60] == b"RSC\x05"


def is_arm64_image(head):
    return head[56:60] == b"ARM\x64"


def is_bzimage(head):
    return head[0x202:0x206] == b"HdrS"


# Each architecture's values: upstream 4.1.0's src/runtime/arch/{riscv64,amd64,arm64}-options.mk
# and src/runtime-rs/arch/{riscv64gc,x86_64,aarch64}-options.mk (MACHINETYPE, QEMUCMD,
# CPUFEATURES, KERNELPARAMS, MACHINEACCELERATORS), the Makefiles' DEFSTATICRESOURCEMGMT_QEMU;
# the kernel's name as Kata's build-kernel.sh installs it (vmlinux for an uncompressed
# Image, vmlinuz for x86_64's bzImage).
ARCHES = {
    "riscv64": {"machine": "virt", "qemu": "/usr/bin/qemu-system-riscv64", "cpu_features": "",
                "params": {"go": [], "rs": CGV2}, "accel": {"go": "", "rs": ""},
                "kernel": "vmlinux.container", "kind": ("a riscv64 Image", is_riscv64_image),
                "static": True},
    "x86_64": {"machine": "q35", "qemu": "/usr/bin/qemu-system-x86_64", "cpu_features": "pmu=off",
               "params": {"go": CGV2, "rs": CGV2}, "accel": {"go": "", "rs": ""},
               "kernel": "vmlinuz.container", "kind": ("an x86 bzImage", is_bzimage),
               "static": False},
    "aarch64": {"machine": "virt", "qemu": "/usr/bin/qemu-system-aarch64", "cpu_features": "pmu=off",
                "params": {"go": CGV2, "rs": CGV2},
                "accel": {"go": "", "rs": "usb=off,gic-version=host"},
                "kernel": "vmlinux.container", "kind": ("an arm64 Image", is_arm64_image),
                "static": True},
}
FILES = {
    # relative to share/defaults/kata-containers: (runtime, variant)
    "configuration-qemu.toml": ("go", "initrd"),
    "configuration-qemu-image.toml": ("go", "image"),
    "runtime-rs/configuration-qemu-runtime-rs.toml": ("rs", "initrd"),
    "runtime-rs/configuration-qemu-runtime-rs-image.toml": ("rs", "image"),
}

failures = []


def check(cond, what):
    if cond:
        print("ok   " + what)
    else:
        print("FAIL " + what)
        failures.append(what)


def check_file(path, runtime, variant, prefix, installed, arch):
    a = ARCHES[arch]
    name = arch + ": " + (os.path.relpath(path, os.path.join(prefix, "share/defaults/kata-containers"))
                          if installed else os.path.basename(path))
    with open(path, "rb") as f:
        text = f.read()
    cfg = tomllib.loads(text.decode())
    head = text.decode().split("\n[", 1)[0]
    check("3.3.0" in head and "4.1.0" in head,
          f"{name}: the header says which Kata versions it was checked against")
    known = GO_KEYS if runtime == "go" else RS_KEYS
    check(set(cfg) == {"hypervisor", "agent", "runtime"},
          f"{name}: sections hypervisor, agent, runtime ({sorted(cfg)})")
    check(list(cfg.get("hypervisor", {})) == ["qemu"], f"{name}: [hypervisor.qemu] only")
    check(list(cfg.get("agent", {})) == ["kata"], f"{name}: [agent.kata] only")
    sections = {"hypervisor": cfg["hypervisor"]["qemu"], "agent": cfg["agent"]["kata"],
                "runtime": cfg["runtime"]}
    for sec, table in sections.items():
        unknown = sorted(set(table) - known[sec])
        check(not unknown, f"{name}: every [{sec}] key is one the {runtime} runtime reads"
              + (f" (unknown: {unknown})" if unknown else ""))
    h = sections["hypervisor"]
    has_initrd, has_image = bool(h.get("initrd")), bool(h.get("image"))
    check(has_initrd != has_image, f"{name}: exactly one of initrd and image is set")
    check((has_initrd and variant == "initrd") or (has_image and variant == "image"),
          f"{name}: the {variant} variant")
    if has_image:
        check(h.get("disable_image_nvdimm") is True,
              f"{name}: an image goes on virtio-blk (the image has no NVDIMM/DAX layout)")
    check(h.get("machine_type") == a["machine"], f"{name}: machine_type {a['machine']}")
    check(h.get("path") == a["qemu"], f"{name}: qemu is {a['qemu']}")
    check(h.get("cpu_features") == a["cpu_features"],
          f"{name}: cpu_features '{a['cpu_features']}'")
    check(h.get("machine_accelerators") == a["accel"][runtime],
          f"{name}: machine_accelerators '{a['accel'][runtime]}'")
    check(h.get("kernel") == f"{prefix}/share/kata-containers/{a['kernel']}",
          f"{name}: the kernel is {a['kernel']}")
    check(h.get("image" if has_image else "initrd") == prefix + "/share/kata-containers/"
          + ("kata-containers.img" if has_image else "kata-containers-initrd.img"),
          f"{name}: the {'image' if has_image else 'initrd'} is Kata's default name")
    check(cfg["runtime"].get("static_sandbox_resource_mgmt") is a["static"],
          f"{name}: static_sandbox_resource_mgmt {a['static']}")
    check(h.get("path") in h.get("valid_hypervisor_paths", []),
          f"{name}: qemu is in valid_hypervisor_paths")
    check(h.get("shared_fs") == "virtio-fs", f"{name}: shared_fs virtio-fs")
    check(h.get("virtio_fs_daemon") in h.get("valid_virtio_fs_daemon_paths", []),
          f"{name}: virtio_fs_daemon is in valid_virtio_fs_daemon_paths")
    check(isinstance(h.get("default_vcpus"), int) and h["default_vcpus"] >= 1
          and isinstance(h.get("default_memory"), int) and h["default_memory"] >= 256,
          f"{name}: default vCPUs and memory set")
    for sec in ("hypervisor", "agent", "runtime"):
        check(isinstance(sections[sec].get("enable_debug"), bool),
              f"{name}: [{sec}] enable_debug is there to turn on")
    check(isinstance(sections["agent"].get("debug_console_enabled"), bool),
          f"{name}: debug_console_enabled is there to turn on")
    params = h.get("kernel_params", "").split()
    check(params == a["params"][runtime],
          f"{name}: the {runtime} runtime's {arch} KERNELPARAMS ({a['params'][runtime]})")
    if runtime == "rs":
        r = sections["runtime"]
        check((r.get("name"), r.get("hypervisor_name"), r.get("agent_name"))
              == ("virt_container", "qemu", "kata"), f"{name}: runtime-rs names qemu and kata")
    if not installed:
        return
    # Every path in the file exists in the installed tree (qemu is the host's).
    paths = [h["kernel"], h.get("initrd") or h.get("image"), h["virtio_fs_daemon"]]
    for p in paths:
        inside = os.path.realpath(p).startswith(os.path.realpath(prefix) + os.sep)
        check(p.startswith(prefix + "/") and inside and os.path.isfile(p),
              f"{name}: {p} exists in the tree")
    with open(h["kernel"], "rb") as f:
        k = f.read(1024)
    check(a["kind"][1](k), f"{name}: the kernel is {a['kind'][0]}")
    if has_initrd:
        with open(h["initrd"], "rb") as f:
            check(f.read(2) == b"\x1f\x8b", f"{name}: the initrd is a gzip'd cpio")
    else:
        with open(h["image"], "rb") as f:
            mbr = f.read(512)
        check(mbr[510:512] == b"\x55\xaa" and mbr[450] == 0x83
              and int.from_bytes(mbr[454:458], "little") == 2048,
              f"{name}: the image has an MBR with a Linux partition at 1 MiB (root=/dev/vda1)")
    check(os.access(h["virtio_fs_daemon"], os.X_OK), f"{name}: virtiofsd is executable")


def generate(arch):
    with tempfile.TemporaryDirectory() as tmp:
        prefix = "/opt/kata"
        cmd = [os.path.join(SRC, "image-builder/kata-config.sh"), "--prefix", prefix, tmp]
        if arch != "riscv64":   # riscv64 is the default, and stays so
            cmd[1:1] = ["--arch", arch]
        subprocess.run(cmd, check=True)
        found = sorted(os.path.relpath(os.path.join(d, f), tmp)
                       for d, _, fs in os.walk(tmp) for f in fs)
        links = {"configuration.toml": "configuration-qemu.toml",
                 "runtime-rs/configuration.toml": "configuration-qemu-runtime-rs.toml"}
        check(found == sorted(list(FILES) + list(links)),
              f"{arch}: kata-config.sh writes the four files and two links ({found})")
        for link, dest in links.items():
            check(os.readlink(os.path.join(tmp, link)) == dest,
                  f"{arch}: {link} (a runtime's default name) -> {dest}")
        for rel, (rt, var) in FILES.items():
            check_file(os.path.join(tmp, rel), rt, var, prefix, installed=False, arch=arch)


def main():
    args = sys.argv[1:]
    if args == ["--generate"]:
        for arch in ARCHES:
            generate(arch)
    elif len(args) == 2 and args[0] == "--installed":
        prefix = os.path.abspath(args[1])
        base = os.path.join(prefix, "share/defaults/kata-containers")
        with open(os.path.join(prefix, "share/kata-agent-c/manifest")) as f:
            arch = next(line.split()[1] for line in f if line.startswith("arch "))
        check(arch in ARCHES, f"the tree's manifest names its arch ({arch})")
        for link in ("configuration.toml", "runtime-rs/configuration.toml"):
            p = os.path.join(base, link)
            check(os.path.islink(p) and os.path.isfile(p), f"{link} is installed (a link)")
        for rel, (rt, var) in FILES.items():
            p = os.path.join(base, rel)
            check(os.path.isfile(p), f"{rel} is installed")
            if os.path.isfile(p):
                check_file(p, rt, var, prefix, installed=True, arch=arch)
    else:
        sys.exit(__doc__)
    print(f"{len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
