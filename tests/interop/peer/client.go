package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "kaproto/grpc"
	types "kaproto/types"
)

// The status code of a ttrpc call error. ttrpc 1.1 hands back the Response's
// Status as a google.golang.org/grpc status; anything else is a transport error.
func statusOf(err error) (codes.Code, string, bool) {
	if err == nil {
		return codes.OK, "", true
	}
	st, ok := status.FromError(err)
	if !ok {
		return codes.Unknown, err.Error(), false
	}
	return st.Code(), st.Message(), true
}

type battery struct {
	failed  int
	timeout time.Duration
}

func (b *battery) run(name string, fn func(ctx context.Context) (string, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	start := time.Now()
	detail, err := fn(ctx)
	el := time.Since(start).Round(time.Microsecond)
	if err != nil {
		b.failed++
		fmt.Printf("FAIL %-32s %v (%v)\n", name, err, el)
		return
	}
	fmt.Printf("ok   %-32s %s (%v)\n", name, detail, el)
}

// expectCode checks that err is a ttrpc status with the wanted code (want < 0: any status).
func expectCode(err error, want int) (string, error) {
	if err == nil {
		return "", fmt.Errorf("call succeeded, want status code %d", want)
	}
	code, msg, ok := statusOf(err)
	if !ok {
		return "", fmt.Errorf("transport error, want a status reply: %v", err)
	}
	if want >= 0 && int(code) != want {
		return "", fmt.Errorf("got %s (%d) %q, want code %d", code, int(code), msg, want)
	}
	return fmt.Sprintf("%s (%d): %s", code, int(code), msg), nil
}

const invalidContainerID = "../interop invalid id"

// expectCreateRejected: CreateContainer must come back as a status with one of
// the wanted codes, and not as a failure to decode the request.
func expectCreateRejected(err error, want []int) (string, error) {
	d, e := expectCode(err, -1)
	if e != nil {
		return "", e
	}
	code, msg, _ := statusOf(err)
	low := strings.ToLower(msg)
	if strings.Contains(low, "not a valid") || strings.Contains(low, "unmarshal") || strings.Contains(low, "decode") {
		return "", fmt.Errorf("the request was not decoded: %s", d)
	}
	if len(want) == 0 {
		return d, nil
	}
	for _, w := range want {
		if int(code) == w {
			return d, nil
		}
	}
	return "", fmt.Errorf("got %s, want one of codes %v", d, want)
}

// A CreateContainer request with nested messages at several levels, maps and
// repeated fields: what the Kata runtime sends for a simple container.
func nestedCreateRequest(annotationBytes int) *pb.CreateContainerRequest {
	spec := &pb.Spec{
		Version:  "1.0.2",
		Hostname: "interop",
		Process: &pb.Process{
			Terminal: false,
			User:     &pb.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}, Username: "u"},
			Args:     []string{"/bin/sh", "-c", "echo hello"},
			Env:      []string{"PATH=/usr/bin:/bin", "TERM=xterm"},
			Cwd:      "/",
			Capabilities: &pb.LinuxCapabilities{
				Bounding:  []string{"CAP_CHOWN", "CAP_KILL"},
				Effective: []string{"CAP_CHOWN"},
				Permitted: []string{"CAP_CHOWN", "CAP_KILL"},
			},
			Rlimits:         []*pb.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
			OOMScoreAdj:     -500,
		},
		Root: &pb.Root{Path: "/run/kata-containers/shared/containers/c1/rootfs", Readonly: true},
		Mounts: []*pb.Mount{
			{Destination: "/proc", Source: "proc", Type: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Source: "tmpfs", Type: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/etc/hosts", Source: "/run/kata-containers/shared/containers/c1-hosts", Type: "bind", Options: []string{"rbind", "ro"}},
		},
		Annotations: map[string]string{
			"io.kubernetes.cri.container-type": "container",
			"io.kubernetes.cri.sandbox-id":     "sb1",
		},
		Linux: &pb.Linux{
			UIDMappings: []*pb.LinuxIDMapping{{HostID: 100000, ContainerID: 0, Size_: 65536}},
			Sysctl:      map[string]string{"net.ipv4.ip_forward": "1"},
			Resources: &pb.LinuxResources{
				Memory: &pb.LinuxMemory{Limit: 256 << 20},
				CPU:    &pb.LinuxCPU{Shares: 1024, Quota: 50000, Period: 100000, Cpus: "0-1"},
				Pids:   &pb.LinuxPids{Limit: 100},
				Devices: []*pb.LinuxDeviceCgroup{
					{Allow: false, Access: "rwm"},
					{Allow: true, Type: "c", Major: 1, Minor: 3, Access: "rwm"},
				},
			},
			CgroupsPath: "/kubepods/besteffort/podX/c1",
			Namespaces: []*pb.LinuxNamespace{
				{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"},
				{Type: "network", Path: "/var/run/netns/cni-1"},
			},
			Devices:     []*pb.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: 0666}},
			MaskedPaths: []string{"/proc/kcore", "/proc/keys"},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
	if annotationBytes > 0 {
		spec.Annotations["interop.large"] = strings.Repeat("x", annotationBytes)
	}
	return &pb.CreateContainerRequest{
		// Not a valid id (it starts with '.' and has '/' and spaces): an agent
		// that implements CreateContainer must reject it before any side effect.
		ContainerId: invalidContainerID,
		ExecId:      "",
		Devices:     []*pb.Device{{Id: "vda", Type: "blk", VmPath: "/dev/vda", ContainerPath: "/dev/xvda", Options: []string{"ro"}}},
		Storages: []*pb.Storage{{
			Driver: "virtio-fs", Source: "kataShared", Fstype: "virtiofs",
			Options: []string{"nodev"}, MountPoint: "/run/kata-containers/shared/containers",
			FsGroup: &pb.FSGroup{GroupId: 1000, GroupChangePolicy: types.FSGroupChangePolicy_OnRootMismatch},
		}},
		OCI:          spec,
		SandboxPidns: true,
	}
}

func clientMain(args []string) int {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 10*time.Second, "per-check timeout")
	createCodes := fs.String("create-codes", "12,3", "status codes accepted from CreateContainer with an invalid container id: UNIMPLEMENTED, or INVALID_ARGUMENT once implemented ('any' = any status reply)")
	concurrent := fs.Int("concurrent", 64, "concurrent Check calls on one connection")
	a, err := parseInterleaved(fs, args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ttrpc-peer client:", err)
		return 2
	}
	addr, err := parseAddr(a)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ttrpc-peer client:", err)
		return 2
	}
	var wantCreate []int // empty: any status
	if *createCodes != "any" {
		for _, f := range strings.Split(*createCodes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				fmt.Fprintln(os.Stderr, "ttrpc-peer client: -create-codes: want numbers or 'any'")
				return 2
			}
			wantCreate = append(wantCreate, n)
		}
	}

	conn, err := dial(addr, *timeout)
	if err != nil {
		fmt.Printf("FAIL %-32s %v\n", "connect", err)
		return 1
	}
	cl := ttrpc.NewClient(conn)
	defer cl.Close()
	health := pb.NewHealthClient(cl)
	agent := pb.NewAgentServiceClient(cl)
	b := &battery{timeout: *timeout}
	fmt.Printf("ttrpc-peer client: %s (one connection for every check)\n", addr)

	b.run("Health.Check", func(ctx context.Context) (string, error) {
		r, err := health.Check(ctx, &pb.CheckRequest{})
		if err != nil {
			return "", err
		}
		if r.Status != pb.HealthCheckResponse_SERVING {
			return "", fmt.Errorf("status %v, want SERVING", r.Status)
		}
		return "status=" + r.Status.String(), nil
	})
	b.run("Health.Version", func(ctx context.Context) (string, error) {
		r, err := health.Version(ctx, &pb.CheckRequest{Service: "interop"})
		if err != nil {
			return "", err
		}
		if r.AgentVersion == "" {
			return "", fmt.Errorf("empty agent_version (grpc_version %q)", r.GrpcVersion)
		}
		return fmt.Sprintf("agent_version=%q grpc_version=%q", r.AgentVersion, r.GrpcVersion), nil
	})
	b.run("AgentService.ResizeVolume", func(ctx context.Context) (string, error) {
		_, err := agent.ResizeVolume(ctx, &pb.ResizeVolumeRequest{VolumeGuestPath: "/x", Size_: 1 << 30})
		return expectCode(err, int(codes.Unimplemented))
	})
	b.run("unknown service", func(ctx context.Context) (string, error) {
		var resp pb.HealthCheckResponse
		err := cl.Call(ctx, "grpc.NoSuchService", "Check", &pb.CheckRequest{}, &resp)
		return expectCode(err, int(codes.Unimplemented))
	})
	b.run("unknown Health method", func(ctx context.Context) (string, error) {
		var resp pb.HealthCheckResponse
		err := cl.Call(ctx, "grpc.Health", "NoSuchMethod", &pb.CheckRequest{}, &resp)
		return expectCode(err, int(codes.Unimplemented))
	})
	b.run(fmt.Sprintf("%d concurrent Health.Check", *concurrent), func(ctx context.Context) (string, error) {
		var wg sync.WaitGroup
		errs := make(chan error, *concurrent)
		start := make(chan struct{})
		for i := 0; i < *concurrent; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r, err := health.Check(ctx, &pb.CheckRequest{})
				if err == nil && r.Status != pb.HealthCheckResponse_SERVING {
					err = fmt.Errorf("status %v", r.Status)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		n := 0
		var first error
		for err := range errs {
			if first == nil {
				first = err
			}
			n++
		}
		if n > 0 {
			return "", fmt.Errorf("%d of %d failed, first: %v", n, *concurrent, first)
		}
		return fmt.Sprintf("%d/%d SERVING", *concurrent, *concurrent), nil
	})
	b.run("CreateContainer (nested OCI spec)", func(ctx context.Context) (string, error) {
		_, err := agent.CreateContainer(ctx, nestedCreateRequest(0))
		return expectCreateRejected(err, wantCreate)
	})
	b.run("CreateContainer (1 MiB request)", func(ctx context.Context) (string, error) {
		req := nestedCreateRequest(1 << 20)
		_, err := agent.CreateContainer(ctx, req)
		d, err := expectCreateRejected(err, wantCreate)
		return fmt.Sprintf("%d-byte request: %s", req.Size(), d), err
	})
	b.run("Health.Check after errors", func(ctx context.Context) (string, error) {
		r, err := health.Check(ctx, &pb.CheckRequest{})
		if err != nil {
			return "", fmt.Errorf("connection unusable after error replies: %v", err)
		}
		return "status=" + r.Status.String(), nil
	})

	if b.failed > 0 {
		fmt.Printf("ttrpc-peer client: %d check(s) FAILED\n", b.failed)
		return 1
	}
	fmt.Println("ttrpc-peer client: all checks passed")
	return 0
}
