package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/gogo/protobuf/proto"

	pb "kaproto/grpc"
)

// A load generator: C connections, each doing Health.Check calls back to back
// (one in flight per connection) for the warm-up plus the measured duration.
//
// Default mode uses containerd's ttrpc.Client. -raw uses a minimal frame loop
// (a pre-encoded request, the response header and status parsed by hand) so
// that less of the machine goes to the client and more of the result reflects
// the server.

type benchResult struct {
	Calls        int     `json:"calls"`
	Seconds      float64 `json:"seconds"`
	CallsPerSec  float64 `json:"calls_per_sec"`
	P50us        float64 `json:"p50_us"`
	P99us        float64 `json:"p99_us"`
	P90us        float64 `json:"p90_us"`
	MaxUs        float64 `json:"max_us"`
	Errors       int     `json:"errors"`
	Mode         string  `json:"mode"`
	Conns        int     `json:"conns"`
	ClientCPU    float64 `json:"client_cpu_s"`
	ServerCPU    float64 `json:"server_cpu_s,omitempty"`
	CallsPerSCPU float64 `json:"calls_per_server_cpu_s,omitempty"`
	FirstError   string  `json:"first_error,omitempty"`
}

type worker struct {
	lat   []int64 // ns, calls started inside the window
	errs  int
	first error
}

// caller makes one Health.Check call.
type caller interface {
	call() error
	close()
}

type ttrpcCaller struct {
	cl *ttrpc.Client
	h  pb.HealthService
}

func (c *ttrpcCaller) call() error {
	r, err := c.h.Check(context.Background(), &pb.CheckRequest{})
	if err == nil && r.Status != pb.HealthCheckResponse_SERVING {
		err = fmt.Errorf("status %v", r.Status)
	}
	return err
}
func (c *ttrpcCaller) close() { c.cl.Close() }

type rawCaller struct {
	conn   net.Conn
	r      *bufio.Reader
	frame  []byte
	stream uint32
	hdr    [10]byte
	body   []byte
}

func newRawCaller(conn net.Conn) (*rawCaller, error) {
	req, err := proto.Marshal(&ttrpc.Request{Service: "grpc.Health", Method: "Check"})
	if err != nil {
		return nil, err
	}
	f := make([]byte, 10+len(req))
	binary.BigEndian.PutUint32(f[0:], uint32(len(req)))
	f[8] = 1 // request
	copy(f[10:], req)
	return &rawCaller{conn: conn, r: bufio.NewReaderSize(conn, 4096), frame: f, stream: 1}, nil
}

func (c *rawCaller) call() error {
	binary.BigEndian.PutUint32(c.frame[4:], c.stream)
	if _, err := c.conn.Write(c.frame); err != nil {
		return err
	}
	if _, err := io.ReadFull(c.r, c.hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(c.hdr[0:])
	sid := binary.BigEndian.Uint32(c.hdr[4:])
	if c.hdr[8] != 2 || sid != c.stream || n > 4<<20 {
		return fmt.Errorf("unexpected frame: type %d stream %d (want 2, %d) len %d", c.hdr[8], sid, c.stream, n)
	}
	c.stream += 2
	if cap(c.body) < int(n) {
		c.body = make([]byte, n)
	}
	c.body = c.body[:n]
	if _, err := io.ReadFull(c.r, c.body); err != nil {
		return err
	}
	return checkRawResponse(c.body)
}
func (c *rawCaller) close() { c.conn.Close() }

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errors.New("bad varint")
	}
	return v, b[n:], nil
}

// checkRawResponse walks a ttrpc Response: field 1 Status{code=1}, field 2 payload
// (HealthCheckResponse{status=1}). OK with SERVING, or an error.
func checkRawResponse(b []byte) error {
	serving := false
	for len(b) > 0 {
		key, rest, err := uvarint(b)
		if err != nil {
			return err
		}
		if key&7 != 2 {
			return fmt.Errorf("response field %d: wire type %d", key>>3, key&7)
		}
		l, rest, err := uvarint(rest)
		if err != nil || uint64(len(rest)) < l {
			return errors.New("response: truncated")
		}
		val := rest[:l]
		b = rest[l:]
		switch key >> 3 {
		case 1: // google.rpc.Status
			if len(val) > 0 && val[0] == 0x08 {
				code, _, err := uvarint(val[1:])
				if err != nil {
					return err
				}
				if code != 0 {
					return fmt.Errorf("status code %d", code)
				}
			}
		case 2: // payload: HealthCheckResponse
			serving = len(val) == 2 && val[0] == 0x08 && val[1] == 1
		}
	}
	if !serving {
		return errors.New("reply is not SERVING")
	}
	return nil
}

func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// After ")": state(3) ... utime is field 14, stime 15 (1-based) -> f[11], f[12].
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100.0, nil // USER_HZ is 100 on Linux
}

func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func percentile(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i]) / 1000.0
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

func benchMain(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	conns := fs.Int("c", 16, "connections (one client and one call in flight each)")
	dur := fs.Duration("d", 5*time.Second, "measured duration")
	warm := fs.Duration("w", time.Second, "warm-up before measuring")
	raw := fs.Bool("raw", false, "minimal hand-written frame client instead of ttrpc.Client")
	pid := fs.Int("pid", 0, "server pid: also report its CPU time over the window")
	a, err := parseInterleaved(fs, args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ttrpc-peer bench:", err)
		return 2
	}
	addr, err := parseAddr(a)
	if err != nil || *conns < 1 || *dur <= 0 || *warm < 0 {
		fmt.Fprintln(os.Stderr, "ttrpc-peer bench: bad arguments:", err)
		return 2
	}

	callers := make([]caller, *conns)
	for i := range callers {
		conn, err := dial(addr, 5*time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ttrpc-peer bench: connect:", err)
			return 1
		}
		if *raw {
			rc, err := newRawCaller(conn)
			if err != nil {
				fmt.Fprintln(os.Stderr, "ttrpc-peer bench:", err)
				return 1
			}
			callers[i] = rc
		} else {
			cl := ttrpc.NewClient(conn)
			callers[i] = &ttrpcCaller{cl: cl, h: pb.NewHealthClient(cl)}
		}
	}

	start := time.Now()
	winStart := start.Add(*warm)
	winEnd := winStart.Add(*dur)
	workers := make([]worker, *conns)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func(w *worker, c caller) {
			defer wg.Done()
			w.lat = make([]int64, 0, 1<<16)
			for {
				t0 := time.Now()
				if !t0.Before(winEnd) {
					return
				}
				err := c.call()
				t1 := time.Now()
				if err != nil {
					w.errs++
					if w.first == nil {
						w.first = err
					}
					if w.errs > 100 {
						return // the connection is gone; don't spin
					}
					continue
				}
				if !t0.Before(winStart) && !t1.After(winEnd) {
					w.lat = append(w.lat, t1.Sub(t0).Nanoseconds())
				}
			}
		}(&workers[i], callers[i])
	}

	var srv0, srv1, cli0, cli1 float64
	var srvErr error
	time.Sleep(time.Until(winStart))
	cli0 = selfCPU()
	if *pid > 0 {
		srv0, srvErr = procCPU(*pid)
	}
	time.Sleep(time.Until(winEnd))
	cli1 = selfCPU()
	if *pid > 0 && srvErr == nil {
		srv1, srvErr = procCPU(*pid)
	}
	wg.Wait()
	for _, c := range callers {
		c.close()
	}

	res := benchResult{Mode: "ttrpc.Client", Conns: *conns, Seconds: dur.Seconds()}
	if *raw {
		res.Mode = "raw"
	}
	var all []int64
	for i := range workers {
		all = append(all, workers[i].lat...)
		res.Errors += workers[i].errs
		if workers[i].first != nil && res.FirstError == "" {
			res.FirstError = workers[i].first.Error()
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res.Calls = len(all)
	res.CallsPerSec = round1(float64(res.Calls) / res.Seconds)
	res.P50us = round1(percentile(all, 0.50))
	res.P90us = round1(percentile(all, 0.90))
	res.P99us = round1(percentile(all, 0.99))
	if len(all) > 0 {
		res.MaxUs = round1(float64(all[len(all)-1]) / 1000)
	}
	res.ClientCPU = float64(int64((cli1-cli0)*100+0.5)) / 100
	if *pid > 0 {
		if srvErr != nil {
			fmt.Fprintln(os.Stderr, "ttrpc-peer bench: server CPU:", srvErr)
		} else {
			res.ServerCPU = float64(int64((srv1-srv0)*100+0.5)) / 100
			if res.ServerCPU > 0 {
				res.CallsPerSCPU = round1(float64(res.Calls) / res.ServerCPU)
			}
		}
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if res.Errors > 0 || res.Calls == 0 {
		fmt.Fprintf(os.Stderr, "ttrpc-peer bench: %d errors, %d calls\n", res.Errors, res.Calls)
		return 1
	}
	return 0
}
