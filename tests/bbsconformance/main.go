// Command bbsconformance checks that a server speaks the Diego BBS Tasks API the way the real BBS
// does, using the real Go client (code.cloudfoundry.org/bbs) and its models.
//
// It prints one JSON line per check on stdout:
//
//	{"check": "lifecycle-external/start-task-same-cell", "ok": true, "detail": "..."}
//
// and a summary line "N passed, N failed" on stderr. Exit status: 0 when every check passed,
// 1 when any check failed, 2 on a usage or configuration error.
//
// See README.md for the scenarios and flags.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// config holds the command line.
type config struct {
	URL            string
	CAFile         string
	CertFile       string
	KeyFile        string
	SkipVerify     bool
	Domain         string
	Cell           string
	Scenario       string
	Timeout        time.Duration
	EventTimeout   time.Duration
	RequestTimeout time.Duration
	ExpectResult   string
	CheckResult    bool
	RootFS         string
	NoCleanup      bool
	DownloadURL    string
	DownloadSHA256 string
	DependencyURL  string
	PlacementTag   string
	CallbackURL    string
	CancelWhen     string
}

// scenario is one named group of checks.
type scenario struct {
	name        string
	description string
	inAll       bool // run by -scenario all
	run         func(s *session)
}

// scenarios is the table of everything this program can check. Order is the run order for "all".
var scenarios = []scenario{
	{"ping", "Ping() is true; the raw /v1/ping answer is 200, application/x-protobuf, body 08 01", true, runPing},
	{"lifecycle-external", "the task state machine driven through Client and InternalClient, list filters, errors, deprecated .r2 routes", true, runLifecycleExternal},
	{"events", "SubscribeToTaskEvents (tasks.r1) and the deprecated /v1/events/tasks stream see created/changed/removed events", true, runEvents},
	{"domains", "UpsertDomain with a TTL and Domains, as Cloud Controller calls them; an empty domain is InvalidRequest; a domain expires after its TTL", true, runDomains},
	{"run-to-completion", "a desired task is run by the server (as a Kubernetes Job) to Completed, then resolved and deleted", false, runRunToCompletion},
	{"cancel-running", "a desired task that the server runs is cancelled and ends Completed, failed, \"task was cancelled\"", false, runCancelRunning},
	{"cloud-controller", "Cloud Controller's Docker and buildpack app tasks, field for field, through the routes it calls in its order (desire.r2, list.r2 by domain, get_by_task_guid.r2, cancel, domains/upsert); both run and are gone after their callbacks, a third is cancelled", false, runCloudController},
	{"serial-download", "Cloud Controller's buildpack task shape, Serial[Download, Run] plus a cached dependency, runs to Completed; its result comes back through TaskByGuid, then the callback, and the server deletes it", false, runSerialDownload},
}

func scenarioNames() []string {
	names := []string{"all"}
	for _, sc := range scenarios {
		names = append(names, sc.name)
	}
	return names
}

func parseFlags(args []string) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("bbsconformance", flag.ContinueOnError)
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8889", "BBS base URL: http://… for plain HTTP, https://… for mutual TLS")
	fs.StringVar(&cfg.CAFile, "ca", "", "CA certificate file that signed the server certificate (https)")
	fs.StringVar(&cfg.CertFile, "cert", "", "client certificate file (https, mutual TLS)")
	fs.StringVar(&cfg.KeyFile, "key", "", "client private key file (https, mutual TLS)")
	fs.BoolVar(&cfg.SkipVerify, "skip-verify", false, "https: do not verify the server certificate (client certificate still sent)")
	fs.StringVar(&cfg.Domain, "domain", "taskop-conformance", "task domain. For ping/lifecycle-external/events use a domain the server does NOT run; for run-to-completion/cancel-running one it runs")
	fs.StringVar(&cfg.Cell, "cell", "conformance-cell-a", "cell id used with StartTask/CompleteTask; a second cell is this plus \"-other\"")
	fs.StringVar(&cfg.Scenario, "scenario", "all", "scenario to run: "+strings.Join(scenarioNames(), ", ")+" (all = every scenario except run-to-completion and cancel-running)")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Minute, "run-to-completion/cancel-running: how long to wait for a task to reach a state")
	fs.DurationVar(&cfg.EventTimeout, "event-timeout", 10*time.Second, "events: how long to wait for each expected event")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 30*time.Second, "HTTP request timeout of the BBS client")
	fs.StringVar(&cfg.ExpectResult, "expect-result", "", "run-to-completion: the task result the server must report (trailing newlines ignored); implies checking it")
	fs.StringVar(&cfg.RootFS, "rootfs", "docker:///busybox", "root_fs of the tasks this program desires")
	fs.BoolVar(&cfg.NoCleanup, "no-cleanup", false, "do not try to cancel/resolve/delete left-over tasks at the end")
	fs.StringVar(&cfg.DownloadURL, "download-url", "", "serial-download: URL of a tgz holding bin/hello.sh (the droplet); cloud-controller: a droplet holding app/run.sh")
	fs.StringVar(&cfg.DownloadSHA256, "download-sha256", "", "serial-download: its sha256 (hex)")
	fs.StringVar(&cfg.DependencyURL, "dependency-url", "", "serial-download: URL of a tgz holding greeting.txt (the cached dependency, to /tmp/lifecycle); cloud-controller: the lifecycle tarball holding launcher")
	fs.StringVar(&cfg.PlacementTag, "placement-tag", "", "serial-download: placement tag of the task")
	fs.StringVar(&cfg.CallbackURL, "callback-url", "", "serial-download: completion_callback_url of the task; cloud-controller: its scheme://host:port")
	fs.StringVar(&cfg.CancelWhen, "cancel-when", "", "cloud-controller: cancel the running long task once this file exists")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: bbsconformance [flags]\n\nscenarios:\n")
		for _, sc := range scenarios {
			all := ""
			if !sc.inAll {
				all = " (not in all)"
			}
			fmt.Fprintf(fs.Output(), "  %-20s %s%s\n", sc.name, sc.description, all)
		}
		fmt.Fprintf(fs.Output(), "\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	cfg.CheckResult = cfg.ExpectResult != ""
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "expect-result" {
			cfg.CheckResult = true
		}
	})
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return nil, fmt.Errorf("-url must start with http:// or https://, got %q", cfg.URL)
	}
	if strings.HasPrefix(cfg.URL, "https://") {
		if cfg.CertFile == "" || cfg.KeyFile == "" {
			return nil, fmt.Errorf("https needs -cert and -key (the BBS client always does mutual TLS)")
		}
		if cfg.CAFile == "" && !cfg.SkipVerify {
			return nil, fmt.Errorf("https needs -ca (or -skip-verify)")
		}
	}
	return cfg, nil
}

func selectScenarios(name string) ([]scenario, error) {
	var out []scenario
	for _, sc := range scenarios {
		if (name == "all" && sc.inAll) || sc.name == name {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("unknown scenario %q; known: %s", name, strings.Join(scenarioNames(), ", "))
	}
	return out, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err == flag.ErrHelp {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bbsconformance:", err)
		os.Exit(2)
	}
	selected, err := selectScenarios(cfg.Scenario)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bbsconformance:", err)
		os.Exit(2)
	}
	conn, err := newConnection(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bbsconformance: cannot build the BBS client:", err)
		os.Exit(2)
	}

	rep := newReporter(os.Stdout)
	for _, sc := range selected {
		s := newSession(cfg, conn, rep, sc.name)
		if s.preflight() {
			sc.run(s)
		}
		if !cfg.NoCleanup {
			s.cleanup()
		}
	}

	passed, failed := rep.counts()
	if len(rep.failedChecks) > 0 {
		sort.Strings(rep.failedChecks)
		fmt.Fprintf(os.Stderr, "failed checks: %s\n", strings.Join(rep.failedChecks, ", "))
	}
	fmt.Fprintf(os.Stderr, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
