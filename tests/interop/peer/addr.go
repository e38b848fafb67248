package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

type address struct {
	kind string // "unix" or "vsock"
	path string
	cid  uint32
	port uint32
}

func (a address) String() string {
	if a.kind == "unix" {
		return "unix://" + a.path
	}
	return fmt.Sprintf("vsock://%d:%d", a.cid, a.port)
}

func parseAddr(s string) (address, error) {
	switch {
	case strings.HasPrefix(s, "unix://"):
		p := strings.TrimPrefix(s, "unix://")
		if p == "" {
			return address{}, fmt.Errorf("%q: empty socket path", s)
		}
		return address{kind: "unix", path: p}, nil
	case strings.HasPrefix(s, "vsock://"):
		rest := strings.TrimPrefix(s, "vsock://")
		i := strings.LastIndexByte(rest, ':')
		if i < 0 {
			return address{}, fmt.Errorf("%q: want vsock://CID:PORT", s)
		}
		var cid uint64
		var err error
		if rest[:i] == "-1" {
			cid = unix.VMADDR_CID_ANY
		} else if cid, err = strconv.ParseUint(rest[:i], 10, 32); err != nil {
			return address{}, fmt.Errorf("%q: bad CID: %v", s, err)
		}
		port, err := strconv.ParseUint(rest[i+1:], 10, 32)
		if err != nil {
			return address{}, fmt.Errorf("%q: bad port: %v", s, err)
		}
		return address{kind: "vsock", cid: uint32(cid), port: uint32(port)}, nil
	}
	return address{}, fmt.Errorf("%q: want unix:///path or vsock://CID:PORT", s)
}

// dial connects to a; vsock is done by hand since net has no AF_VSOCK.
func dial(a address, timeout time.Duration) (net.Conn, error) {
	if a.kind == "unix" {
		return net.DialTimeout("unix", a.path, timeout)
	}
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vsock socket: %w", err)
	}
	tv := unix.NsecToTimeval(timeout.Nanoseconds())
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	if err := unix.Connect(fd, &unix.SockaddrVM{CID: a.cid, Port: a.port}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vsock connect %s: %w", a, err)
	}
	tv = unix.Timeval{}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	// net.FileConn rejects AF_VSOCK; an os.File on a non-blocking fd still
	// goes through the runtime poller and supports deadlines.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &vsockConn{File: os.NewFile(uintptr(fd), a.String()), remote: a}, nil
}

type vsockAddr struct{ a address }

func (v vsockAddr) Network() string { return "vsock" }
func (v vsockAddr) String() string  { return v.a.String() }

type vsockConn struct {
	*os.File
	remote address
}

func (c *vsockConn) LocalAddr() net.Addr  { return vsockAddr{address{kind: "vsock"}} }
func (c *vsockConn) RemoteAddr() net.Addr { return vsockAddr{c.remote} }
