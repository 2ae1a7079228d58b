// Command taskop-executor runs a Diego BBS task's action tree inside a
// Kubernetes container, with Diego's semantics. The log stream
// (stdout/stderr) belongs to the task; errors go to the termination message.
//
//	taskop-executor copy DEST            copy this binary to DEST (init container)
//	taskop-executor run SPECFILE         run the task (task container entrypoint)
//	taskop-executor result-sidecar DIR   print a large result to the log (sidecar)
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"taskop.dev/executor/internal/actions"
	"taskop.dev/executor/internal/result"
	"taskop.dev/executor/internal/spec"
	"taskop.dev/executor/internal/task"
)

func main() {
	actions.MaybeNofileHelper(os.Args)
	os.Exit(mainCode(os.Args))
}

func mainCode(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: taskop-executor copy DEST | run SPECFILE | result-sidecar DIR")
		return 2
	}
	switch args[1] {
	case "copy":
		if err := copySelf(args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "taskop-executor copy:", err)
			return 1
		}
		return 0
	case "run":
		return runTask(args[2])
	case "result-sidecar":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		return result.Sidecar(args[2], os.Stdout, sigs)
	}
	fmt.Fprintf(os.Stderr, "taskop-executor: unknown command %q\n", args[1])
	return 2
}

func runTask(specFile string) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	s, err := spec.ReadFile(specFile)
	if err != nil {
		// No spec, so the default termination message path.
		if werr := result.WriteFile(spec.DefaultTerminationMessagePath, result.Failure(err.Error())); werr != nil {
			fmt.Fprintln(os.Stderr, "taskop-executor run:", err)
		}
		return 1
	}
	return task.Run(s, task.Options{Stdout: os.Stdout, Stderr: os.Stderr, Signals: sigs}).ExitCode
}

// copySelf copies the running executable to dest atomically: dest.tmp,
// mode 0555, rename.
func copySelf(dest string) error {
	self, err := os.Executable()
	if err != nil {
		// No /proc (a chroot): the path it was started by, when that is one.
		if !strings.Contains(os.Args[0], "/") {
			return err
		}
		self = os.Args[0]
	}
	in, err := os.Open(self)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	tmp := dest + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o555); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dest)
}
