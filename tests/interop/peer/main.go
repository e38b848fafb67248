// ttrpc-peer: an independent ttrpc peer built from containerd's Go ttrpc
// (Debian golang-github-containerd-ttrpc-dev) and Go code generated from the
// project's own proto/*.proto. Used to check that the C agent and agent-ctl
// interoperate with the reference implementation, and to benchmark them.
//
//	ttrpc-peer client ADDR [flags]   interop battery against a ttrpc server
//	ttrpc-peer server ADDR [flags]   serve grpc.Health (+ a bit of AgentService)
//	ttrpc-peer bench ADDR [flags]    Health.Check throughput/latency, one JSON line
//
// ADDR is unix:///path or vsock://CID:PORT (server: unix only).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

const peerVersion = "go-ttrpc-peer"

func usage() {
	fmt.Fprintf(os.Stderr, `Usage:
  ttrpc-peer client ADDR [-timeout 10s] [-create-codes 12,3|any] [-concurrent 64]
  ttrpc-peer server ADDR [-agent-version go-ttrpc-peer]
  ttrpc-peer bench ADDR [-c 16] [-d 5s] [-w 1s] [-raw] [-pid PID]
ADDR: unix:///path or vsock://CID:PORT (server: unix only)
Exit status: 0 ok, 1 a check failed / error, 2 usage.
`)
}

// parseInterleaved parses flags that may come before or after the single
// positional argument (ttrpc-peer bench ADDR -c 16 and bench -c 16 ADDR).
func parseInterleaved(fs *flag.FlagSet, args []string) (string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		return "", fmt.Errorf("expected exactly one ADDR, got %d (%s)", len(pos), strings.Join(pos, " "))
	}
	return pos[0], nil
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var rc int
	switch os.Args[1] {
	case "client":
		rc = clientMain(os.Args[2:])
	case "server":
		rc = serverMain(os.Args[2:])
	case "bench":
		rc = benchMain(os.Args[2:])
	case "-h", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "ttrpc-peer: unknown command %q\n", os.Args[1])
		usage()
		rc = 2
	}
	os.Exit(rc)
}
