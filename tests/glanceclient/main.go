// Command glanceclient checks that a server speaks the OpenStack Glance v2 Tasks API (taskop's
// "Glance door") the way gophercloud expects it, using the real Go client
// (github.com/gophercloud/gophercloud/v2, package openstack/image/v2/tasks).
//
// It prints one line per check on stdout, in a fixed order:
//
//	PASS create-real
//	FAIL list-all-pages: 4 GET requests, want 3 for 62 tasks
//
// then one line with the ids of the tasks it created, for the calling test to cross-check:
//
//	IDS {"real":"<id>","failing":"<id>","many":["<id>",…]}
//
// Details (timings, counts) go to stderr, ending with a summary line "N passed, N failed".
// Exit status: 0 when every check passed, 1 when any check failed, 2 on a usage error.
//
// See README.md for the checks and flags.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// config holds the command line.
type config struct {
	Endpoint       string
	Token          string
	DeniedToken    string
	RealType       string
	FailingType    string
	FastType       string
	ExpectOwner    string
	ExpectMessage  string
	Count          int
	Timeout        time.Duration
	RequestTimeout time.Duration
	PollInterval   time.Duration
}

func parseFlags(args []string) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("glanceclient", flag.ContinueOnError)
	fs.StringVar(&cfg.Endpoint, "endpoint", "", "base URL of the Glance door; the API is under <endpoint>v2/ (required)")
	fs.StringVar(&cfg.Token, "token", "", "token (X-Auth-Token) of an identity allowed to create and list tasks (required)")
	fs.StringVar(&cfg.DeniedToken, "denied-token", "", "valid token of an identity lacking the right: list and create must be 403 (required)")
	fs.StringVar(&cfg.RealType, "real-type", "", "task type whose container copies input to result (required)")
	fs.StringVar(&cfg.FailingType, "failing-type", "", "task type that ends in failure (required)")
	fs.StringVar(&cfg.FastType, "fast-type", "", "task type that quickly ends in success (required)")
	fs.StringVar(&cfg.ExpectOwner, "expect-owner", "", "owner every created task must report (required)")
	fs.StringVar(&cfg.ExpectMessage, "expect-message", "", "substring of the message of the failing task")
	fs.IntVar(&cfg.Count, "count", 60, "number of fast-type tasks to create")
	fs.DurationVar(&cfg.Timeout, "timeout", 4*time.Minute, "how long to wait for tasks to become final (per wait)")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 30*time.Second, "HTTP timeout of each request")
	fs.DurationVar(&cfg.PollInterval, "poll", 500*time.Millisecond, "interval between polls of tasks.Get")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"endpoint", cfg.Endpoint}, {"token", cfg.Token}, {"denied-token", cfg.DeniedToken},
		{"real-type", cfg.RealType}, {"failing-type", cfg.FailingType}, {"fast-type", cfg.FastType},
		{"expect-owner", cfg.ExpectOwner},
	} {
		if f.value == "" {
			missing = append(missing, "-"+f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	if !strings.HasPrefix(cfg.Endpoint, "http://") && !strings.HasPrefix(cfg.Endpoint, "https://") {
		return nil, fmt.Errorf("-endpoint must start with http:// or https://, got %q", cfg.Endpoint)
	}
	// gophercloud requires Endpoint and ResourceBase to end with a slash.
	cfg.Endpoint = gophercloud.NormalizeURL(cfg.Endpoint)
	if cfg.Count < 1 {
		return nil, fmt.Errorf("-count must be at least 1, got %d", cfg.Count)
	}
	if cfg.FastType == cfg.RealType || cfg.FastType == cfg.FailingType {
		return nil, fmt.Errorf("-fast-type must differ from -real-type and -failing-type (filter-type counts it)")
	}
	return cfg, nil
}

// ---------------------------------------------------------------------------------------------
// Reporting

type reporter struct {
	out          io.Writer
	passed       int
	failed       int
	failedChecks []string
}

// report prints "PASS name" or "FAIL name: why" and returns whether the check passed.
func (r *reporter) report(name string, err error) bool {
	if err == nil {
		r.passed++
		fmt.Fprintf(r.out, "PASS %s\n", name)
		return true
	}
	r.failed++
	r.failedChecks = append(r.failedChecks, name)
	fmt.Fprintf(r.out, "FAIL %s: %s\n", name, oneLine(err.Error()))
	return false
}

// info writes a detail line to stderr.
func info(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "  "+format+"\n", args...)
}

// oneLine keeps a check's reason on its line (gophercloud errors quote response bodies).
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", "")
	return strings.ReplaceAll(s, "\n", `\n`)
}

// ---------------------------------------------------------------------------------------------
// Connection: gophercloud service clients sharing one counting transport.

// countingTransport counts the GET requests that go through it, so list-all-pages can check how
// many pages gophercloud's pager fetched.
type countingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	gets []string // "path?query" of each GET since the last reset
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet {
		t.mu.Lock()
		t.gets = append(t.gets, req.URL.RequestURI())
		t.mu.Unlock()
	}
	return t.next.RoundTrip(req)
}

func (t *countingTransport) reset() {
	t.mu.Lock()
	t.gets = nil
	t.mu.Unlock()
}

func (t *countingTransport) getRequests() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.gets...)
}

// newServiceClient builds an image v2 service client by hand (no Keystone): the token is sent
// as X-Auth-Token; an empty token sends no X-Auth-Token header at all (ReauthFunc stays nil, so a
// 401 is returned as is instead of triggering a reauthentication).
func newServiceClient(cfg *config, token string, transport http.RoundTripper) *gophercloud.ServiceClient {
	pc := &gophercloud.ProviderClient{}
	if token != "" {
		pc.SetToken(token)
	}
	pc.HTTPClient = http.Client{Transport: transport, Timeout: cfg.RequestTimeout}
	return &gophercloud.ServiceClient{
		ProviderClient: pc,
		Endpoint:       cfg.Endpoint,
		ResourceBase:   cfg.Endpoint + "v2/",
	}
}

// ---------------------------------------------------------------------------------------------

// idsLine is printed last, prefixed by "IDS ".
type idsLine struct {
	Real    string   `json:"real"`
	Failing string   `json:"failing"`
	Many    []string `json:"many"`
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err == flag.ErrHelp {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "glanceclient:", err)
		os.Exit(2)
	}

	counter := &countingTransport{next: http.DefaultTransport}
	r := &run{
		cfg:     cfg,
		ctx:     context.Background(),
		rep:     &reporter{out: os.Stdout},
		counter: counter,
		client:  newServiceClient(cfg, cfg.Token, counter),
		noToken: newServiceClient(cfg, "", counter),
		denied:  newServiceClient(cfg, cfg.DeniedToken, counter),
	}
	r.runAll()

	ids := idsLine{Real: r.realID, Failing: r.failingID, Many: r.manyIDs}
	if ids.Many == nil {
		ids.Many = []string{}
	}
	b, _ := json.Marshal(ids)
	fmt.Printf("IDS %s\n", b)

	if len(r.rep.failedChecks) > 0 {
		fmt.Fprintf(os.Stderr, "failed checks: %s\n", strings.Join(r.rep.failedChecks, ", "))
	}
	fmt.Fprintf(os.Stderr, "%d passed, %d failed\n", r.rep.passed, r.rep.failed)
	if r.rep.failed > 0 {
		os.Exit(1)
	}
}
