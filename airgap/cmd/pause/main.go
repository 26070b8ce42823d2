// Command pause is the process of a pod's sandbox container: it keeps the pod's namespaces alive,
// does nothing else, and exits when it is asked to stop (SIGINT or SIGTERM).
// When the pod shares one PID namespace the sandbox is PID 1 of it, so orphaned processes are
// re-parented to this program: it collects their exit status so they do not stay zombies.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is reported by `pause -v`; the image tag carries the version kubelet and containerd look for.
var version = "e2e"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "-v", "--version":
			fmt.Println("pause (sentiment-platform e2e)", version)
			return
		default:
			fmt.Fprintf(os.Stderr, "usage: %s [-v]\n", os.Args[0])
			os.Exit(2)
		}
	}

	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	// Children may have exited before the handler was installed.
	collectChildren()
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			collectChildren()
			continue
		}
		fmt.Fprintf(os.Stderr, "pause: stopping on %v\n", sig)
		os.Exit(0)
	}
}

// collectChildren waits for every child that has already exited, without blocking.
func collectChildren() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
