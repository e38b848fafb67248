package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/containerd/ttrpc"

	pb "kaproto/grpc"
)

type healthService struct{ version string }

func (h *healthService) Check(ctx context.Context, req *pb.CheckRequest) (*pb.HealthCheckResponse, error) {
	return &pb.HealthCheckResponse{Status: pb.HealthCheckResponse_SERVING}, nil
}

func (h *healthService) Version(ctx context.Context, req *pb.CheckRequest) (*pb.VersionCheckResponse, error) {
	return &pb.VersionCheckResponse{AgentVersion: h.version, GrpcVersion: "0.0.1"}, nil
}

const peerMemBlockSize = 128 << 20

func getGuestDetails(version string, req *pb.GuestDetailsRequest) *pb.GuestDetailsResponse {
	r := &pb.GuestDetailsResponse{
		AgentDetails: &pb.AgentDetails{
			Version:         version,
			InitDaemon:      false,
			DeviceHandlers:  []string{"blk", "scsi"},
			StorageHandlers: []string{"9p", "virtio-fs", "ephemeral"},
			SupportsSeccomp: false,
			ExtraFeatures:   []string{"interop"},
		},
	}
	if req.MemBlockSize {
		r.MemBlockSizeBytes = peerMemBlockSize
	}
	if req.MemHotplugProbe {
		r.SupportMemHotplugProbe = true
	}
	return r
}

func serverMain(args []string) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	version := fs.String("agent-version", peerVersion, "agent_version reported by Health.Version")
	a, err := parseInterleaved(fs, args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ttrpc-peer server:", err)
		return 2
	}
	addr, err := parseAddr(a)
	if err != nil || addr.kind != "unix" {
		fmt.Fprintln(os.Stderr, "ttrpc-peer server: want unix:///path:", a)
		return 2
	}
	srv, err := ttrpc.NewServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ttrpc-peer server:", err)
		return 1
	}
	pb.RegisterHealthService(srv, &healthService{version: *version})
	// Only GetGuestDetails; every other AgentService method is unregistered,
	// so ttrpc answers it with codes.Unimplemented.
	srv.Register("grpc.AgentService", map[string]ttrpc.Method{
		"GetGuestDetails": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req pb.GuestDetailsRequest
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			return getGuestDetails(*version, &req), nil
		},
	})

	if fi, err := os.Lstat(addr.path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(addr.path) // stale socket from an earlier run
	}
	l, err := net.Listen("unix", addr.path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ttrpc-peer server:", err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), l) }()
	fmt.Fprintf(os.Stderr, "ttrpc-peer server: listening on %s (pid %d)\n", addr, os.Getpid())

	select {
	case sig := <-sigs:
		fmt.Fprintf(os.Stderr, "ttrpc-peer server: %v, shutting down\n", sig)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		os.Remove(addr.path)
		return 0
	case err := <-done:
		os.Remove(addr.path)
		if err != nil && err != ttrpc.ErrServerClosed {
			fmt.Fprintln(os.Stderr, "ttrpc-peer server:", err)
			return 1
		}
		return 0
	}
}
