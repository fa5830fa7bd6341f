// Command ivschat-bench is ivschatd's load generator. It only targets
// loopback addresses and every run is bounded in time.
//
//	ivschat-bench tokens -endpoint http://127.0.0.1:8080 -duration 10s -workers 32
//	ivschat-bench messaging -endpoint http://127.0.0.1:8080 -viewers 5000 -rate 100 -duration 30s -server-pid PID
//	ivschat-bench messaging -endpoint http://127.0.0.1:8081,http://127.0.0.1:8082 -viewers 1000 -rate 100 -duration 15s
//	ivschat-bench soak -endpoint http://127.0.0.1:8080 -connections 5000 -churn 50 -rate 20 -duration 60m -server-pid PID
package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "tokens":
		err = runTokens(os.Args[2:])
	case "messaging":
		err = runMessaging(os.Args[2:])
	case "soak":
		err = runSoak(os.Args[2:])
	case "-h", "--help", "help":
		usage()
		return
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ivschat-bench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `Usage: ivschat-bench <mode> [flags]

Modes:
  tokens     signed CreateChatToken requests over HTTP (control-plane throughput)
  messaging  WebSocket viewers in one room, on one node or split over a cluster's:
             fan-out rate, latency (pooled and per viewer), loss, ordering, the
             server's frames per write and memory per idle connection
  soak       many connections with churn, token minting and messages for a long
             time, across one or more nodes: delivery loss, and the slope of
             the servers' RSS, goroutines and open files after warm-up

Run "ivschat-bench <mode> -h" for the flags of a mode.
`)
}

// requireLoopback refuses any endpoint that is not a loopback address: the
// load generator must never send traffic off the machine.
func requireLoopback(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("endpoint: %w", err)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return errors.New("endpoint must be a loopback address (127.0.0.0/8, ::1 or localhost)")
	}
	return nil
}
