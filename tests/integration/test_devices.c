/* Devices through the real agent and the real kernel's uevents: a container
 * device that does not exist yet (CreateContainer parks, Health still answers,
 * a loop device is created, then bound; the container sees it under its OCI
 * path with the guest's numbers), a storage wait that runs out
 * (DEADLINE_EXCEEDED, nothing left behind, a corrected call succeeds), AddSwap
 * by a PCI path that never comes, a client leaving during a wait, and bad
 * device requests. Block storages by PCI path are exercised in the guest (e2e). */
#include <stdbool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctr.h"

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define MP "/run/kata-containers/sandbox/storage/hotplugged"

static const char *rootfs;
static char scratch[] = "/tmp/ka-it-devices-XXXXXX";
static struct agent_proc agent;
static int added_loop = -1; /* created with LOOP_CTL_ADD: removed at teardown */
static char attached[64];   /* losetup -f: detached at teardown */

static int group_setup(void **state)
{
    (void)state;
    rootfs = ctr_test_rootfs();
    if (!rootfs || !have_loop_tools())
        return -1;
    if (access("/dev/loop-control", W_OK) != 0) {
        fprintf(stderr, "needs /dev/loop-control\n");
        return -1;
    }
    if (!mkdtemp(scratch)) {
        perror(scratch);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    sh("rm -rf %s", scratch);
    return 0;
}

static void remove_added_loop(void)
{
    if (added_loop < 0)
        return;
    sh("losetup -d /dev/loop%d 2>/dev/null", added_loop);
    int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl >= 0) {
        ioctl(ctl, LOOP_CTL_REMOVE, added_loop);
        close(ctl);
    }
    added_loop = -1;
}

static int teardown(void **state)
{
    (void)state;
    agent_kill(&agent);
    remove_added_loop();
    if (attached[0])
        sh("losetup -d %s 2>/dev/null", attached);
    attached[0] = '\0';
    return 0;
}

/* A loop index the kernel does not have yet. */
static int unused_loop_index(void)
{
    for (int i = 200 + getpid() % 100; i < 1000; i++) {
        char p[64];
        snprintf(p, sizeof(p), "/sys/class/block/loop%d", i);
        if (access(p, F_OK) != 0)
            return i;
    }
    fail_msg("no unused loop index");
    return -1;
}

static void make_image(const char *img)
{
    assert_int_equal(sh("mkdir -p %s/stage && echo hotplugged > %s/stage/hello.txt && "
                        "truncate -s 16M %s && mkfs.ext4 -q -F -d %s/stage %s",
                        scratch, scratch, img, scratch, img),
                     0);
}

static int create_sandbox(struct ctr *t, Grpc__Storage **st, size_t n)
{
    Grpc__CreateSandboxRequest cs = GRPC__CREATE_SANDBOX_REQUEST__INIT;
    cs.hostname = (char *)"devices-test";
    cs.sandbox_id = (char *)"sandbox-devices";
    cs.storages = st;
    cs.n_storages = n;
    return ctr_call(t, "CreateSandbox", &cs.base, NULL, NULL);
}

/* The child half of the hotplug test: while CreateContainer waits, Health must
 * answer; then the "hotplug": a new loop device (uevent "add", no medium yet:
 * the agent keeps waiting), then bound to an image (uevent "change"). */
static int hotplug_later(int index, const char *img)
{
    usleep(300 * 1000);
    char out[256], err[256];
    if (run_ctl(&agent, out, sizeof(out), err, sizeof(err), ARGS("check")) != 0)
        return 10;
    int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0 || ioctl(ctl, LOOP_CTL_ADD, index) != index)
        return 11;
    close(ctl);
    char node[64];
    snprintf(node, sizeof(node), "/dev/loop%d", index);
    if (access(node, F_OK) != 0)
        mknod(node, S_IFBLK | 0660, makedev(7, (unsigned)index)); /* no devtmpfs node yet */
    usleep(300 * 1000);
    return sh("losetup %s %s", node, img) == 0 ? 0 : 12;
}

/* A spec whose Linux.Devices has /dev/xvda with the host's numbers (which mean
 * nothing in the guest), running cmd. */
static Grpc__Spec *spec_with_device(const char *cmd)
{
    Grpc__Spec *spec = spec_new(rootfs, ARGS("sh", "-c", cmd));
    Grpc__LinuxDevice *ld = calloc(1, sizeof(*ld));
    grpc__linux_device__init(ld);
    ld->path = strdup("/dev/xvda");
    ld->type = strdup("b");
    ld->major = 252;
    ld->minor = 99;
    ld->filemode = 0660;
    spec->linux->devices = realloc(spec->linux->devices, sizeof(*spec->linux->devices));
    spec->linux->devices[0] = ld;
    spec->linux->n_devices = 1;
    return spec;
}

#define READ_XVDA \
    "stat -c %t:%T /dev/xvda && dd if=/dev/xvda of=/dev/null bs=4096 count=1 2>/dev/null"

static int create_with_device(struct ctr *t, const char *cid, Grpc__Spec *spec, Grpc__Device *dev)
{
    Grpc__Device *devs[] = {dev};
    Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
    req.container_id = req.exec_id = (char *)cid;
    req.oci = spec;
    req.devices = devs;
    req.n_devices = 1;
    return ctr_call(t, "CreateContainer", &req.base, NULL, NULL);
}

/* start, stdout, wait, remove: the output must be want and the exit 0. */
static void run_expect(struct ctr *t, const char *cid, const char *want)
{
    assert_int_equal(ctr_start(t, cid), 0);
    char out[256];
    ctr_read_all(t, cid, "", false, out, sizeof(out));
    int status = -1;
    assert_int_equal(ctr_wait(t, cid, "", &status), 0);
    assert_string_equal(out, want);
    assert_int_equal(status, 0); /* readable: the device cgroup allows it */
    assert_int_equal(ctr_remove(t, cid), 0);
}

static void test_device_waits_for_hotplug(void **state)
{
    (void)state;
    char img[300], src[64], want[32];
    snprintf(img, sizeof(img), "%s/hot.img", scratch);
    make_image(img);
    int index = unused_loop_index();
    snprintf(src, sizeof(src), "/dev/loop%d", index);
    snprintf(want, sizeof(want), "7:%x\n", index);
    agent_start_isolated(&agent, "agent.hotplug_timeout=20");
    struct ctr t;
    ctr_open(&t, &agent);
    assert_int_equal(ctr_create_sandbox(&t, "devices-test"), 0);
    added_loop = index;
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        _exit(hotplug_later(index, img));
    Grpc__Spec *spec = spec_with_device(READ_XVDA);
    Grpc__Device dev = GRPC__DEVICE__INIT;
    dev.type = (char *)"mmioblk";
    dev.vm_path = src;
    dev.container_path = (char *)"/dev/xvda";
    double t0 = now_s();
    int code = create_with_device(&t, "hotctr", spec, &dev);
    double waited = now_s() - t0;
    int status = -1;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0); /* Health answered during the wait */
    if (code != 0)
        fail_msg("CreateContainer: %d %s", code, t.msg);
    assert_true(waited >= 0.5); /* it did wait, past the "add" without a medium */
    assert_true(waited < 15);
    run_expect(&t, "hotctr", want);
    spec_free(spec);
    ctr_close(&t);
    agent_stop(&agent);
}

static void test_wait_times_out_cleanly(void **state)
{
    (void)state;
    char src[64];
    snprintf(src, sizeof(src), "/dev/loop%d", unused_loop_index());
    agent_start_isolated(&agent, "agent.hotplug_timeout=1");
    struct ctr t;
    ctr_open(&t, &agent);
    Grpc__Storage *st[2] = {storage_new("ephemeral", "tmpfs", "tmpfs",
                                        "/run/kata-containers/sandbox/eph"),
                            storage_new("blk", src, "", MP)};
    double t0 = now_s();
    int code = create_sandbox(&t, st, 2);
    double waited = now_s() - t0;
    assert_int_equal(code, 4); /* DEADLINE_EXCEEDED */
    assert_non_null(strstr(t.msg, src));
    assert_true(waited >= 0.9 && waited < 5);
    /* Nothing was done: not even the storage before it. */
    assert_int_equal(agent_mount_count(&agent, "/run/kata-containers/sandbox/eph", NULL), 0);
    assert_int_equal(agent_mount_count(&agent, MP, NULL), 0);
    assert_true(agent_alive(&agent));
    /* A corrected call goes through. */
    assert_int_equal(create_sandbox(&t, st, 1), 0);
    assert_int_equal(agent_mount_count(&agent, "/run/kata-containers/sandbox/eph", NULL), 1);
    int fds = agent_fd_count(&agent);
    /* AddSwap by a PCI path behind bridges that never come. */
    Grpc__AddSwapRequest sw = GRPC__ADD_SWAP_REQUEST__INIT;
    uint32_t path[] = {0x1f, 0x1f, 0x1f};
    sw.pcipath = path;
    sw.n_pcipath = 3;
    assert_int_equal(ctr_call(&t, "AddSwap", &sw.base, NULL, NULL), 4);
    assert_non_null(strstr(t.msg, "1f/1f/1f"));
    uint32_t bad[] = {0x20};
    sw.pcipath = bad;
    sw.n_pcipath = 1;
    assert_int_equal(ctr_call(&t, "AddSwap", &sw.base, NULL, NULL), 3);
    /* A client that goes away while its call waits leaves nothing behind. */
    sw.pcipath = path;
    sw.n_pcipath = 3;
    uint8_t buf[64];
    size_t len = grpc__add_swap_request__pack(&sw, buf);
    int raw = raw_connect(&agent);
    raw_send_request(raw, 1, "grpc.AgentService", "AddSwap", buf, len);
    usleep(200 * 1000);
    close(raw);
    usleep(1200 * 1000); /* past the timeout: a leftover timer would fire now */
    assert_true(agent_alive(&agent));
    assert_int_equal(agent_wait_fd_count(&agent, fds, 2000), fds);
    assert_int_equal(ctr_call(&t, "AddSwap", &sw.base, NULL, NULL), 4);
    ctr_close(&t);
    storage_free(st[0]);
    storage_free(st[1]);
    agent_stop(&agent);
}

static void test_container_device_rewritten(void **state)
{
    (void)state;
    char img[300];
    snprintf(img, sizeof(img), "%s/dev.img", scratch);
    make_image(img);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "losetup -f --show %s", img);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(attached, sizeof(attached), p));
    pclose(p);
    attached[strcspn(attached, "\n")] = '\0';
    struct stat sb;
    assert_int_equal(stat(attached, &sb), 0);
    char want[64];
    /* busybox stat: %t/%T are the major/minor in hex */
    snprintf(want, sizeof(want), "%x:%x\n", major(sb.st_rdev), minor(sb.st_rdev));

    agent_start_isolated(&agent, NULL);
    struct ctr t;
    ctr_open(&t, &agent);
    assert_int_equal(ctr_create_sandbox(&t, "devices-test"), 0);
    Grpc__Spec *spec = spec_with_device(READ_XVDA);
    Grpc__Device dev = GRPC__DEVICE__INIT;
    dev.type = (char *)"blk";
    dev.vm_path = attached;
    dev.container_path = (char *)"/dev/xvda";
    if (create_with_device(&t, "devctr", spec, &dev) != 0)
        fail_msg("CreateContainer: %s", t.msg);
    run_expect(&t, "devctr", want);

    /* A device the spec does not list, a type nobody knows, a PCI path that is
     * not one, a vfio device without functions: each refused, nothing made. */
    dev.container_path = (char *)"/dev/notinspec";
    assert_int_equal(create_with_device(&t, "devbad", spec, &dev), 3);
    assert_non_null(strstr(t.msg, "/dev/notinspec"));
    dev.container_path = (char *)"/dev/xvda";
    dev.type = (char *)"floppy";
    assert_int_equal(create_with_device(&t, "devbad", spec, &dev), 3);
    dev.type = (char *)"blk";
    dev.id = (char *)"zz/00";
    assert_int_equal(create_with_device(&t, "devbad", spec, &dev), 3);
    dev.id = (char *)"";
    dev.type = (char *)"vfio-pci";
    assert_int_equal(create_with_device(&t, "devbad", spec, &dev), 3);
    assert_true(agent_alive(&agent));
    spec_free(spec);
    ctr_close(&t);
    agent_stop(&agent);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_device_waits_for_hotplug, teardown),
        cmocka_unit_test_teardown(test_wait_times_out_cleanly, teardown),
        cmocka_unit_test_teardown(test_container_device_rewritten, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
