package main

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"code.cloudfoundry.org/bbs"
	"code.cloudfoundry.org/bbs/models"
	"code.cloudfoundry.org/lager/v3"
	"code.cloudfoundry.org/tlsconfig"
	"github.com/gogo/protobuf/proto"
	"github.com/tedsuo/rata"
)

// ---------------------------------------------------------------------------------------------
// Reporting

type result struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

type reporter struct {
	mu           sync.Mutex
	enc          *json.Encoder
	passed       int
	failed       int
	failedChecks []string
}

func newReporter(w io.Writer) *reporter {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &reporter{enc: enc}
}

func (r *reporter) report(res result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if res.OK {
		r.passed++
	} else {
		r.failed++
		r.failedChecks = append(r.failedChecks, res.Check)
	}
	_ = r.enc.Encode(res)
}

func (r *reporter) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.passed, r.failed
}

// ---------------------------------------------------------------------------------------------
// Connection: the real BBS client plus a raw HTTP client for routes the client does not expose.

type connection struct {
	client bbs.InternalClient
	// raw is used for deprecated routes (.r2, /v1/events/tasks) and byte-level checks. It
	// uses the same TLS identity as the BBS client, and the route table of the real module.
	raw          *http.Client
	rawStreaming *http.Client
	reqGen       *rata.RequestGenerator
}

func newConnection(cfg *config) (*connection, error) {
	var (
		client bbs.InternalClient
		err    error
		tlsCfg *tls.Config
	)
	if strings.HasPrefix(cfg.URL, "https://") {
		if cfg.SkipVerify {
			client, err = bbs.NewClientWithConfig(bbs.ClientConfig{
				URL: cfg.URL, IsTLS: true, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile,
				InsecureSkipVerify: true, RequestTimeout: cfg.RequestTimeout,
			})
		} else {
			client, err = bbs.NewClientWithConfig(bbs.ClientConfig{
				URL: cfg.URL, IsTLS: true, CAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile,
				RequestTimeout: cfg.RequestTimeout,
			})
		}
		if err != nil {
			return nil, err
		}
		// Same TLS settings as bbs.newSecureClient.
		var opts []tlsconfig.ClientOption
		if !cfg.SkipVerify {
			opts = append(opts, tlsconfig.WithAuthorityFromFile(cfg.CAFile))
		}
		tlsCfg, err = tlsconfig.Build(
			tlsconfig.WithInternalServiceDefaults(),
			tlsconfig.WithIdentityFromFile(cfg.CertFile, cfg.KeyFile),
		).Client(opts...)
		if err != nil {
			return nil, err
		}
		tlsCfg.InsecureSkipVerify = cfg.SkipVerify
	} else {
		client, err = bbs.NewClientWithConfig(bbs.ClientConfig{
			URL: cfg.URL, IsTLS: false, RequestTimeout: cfg.RequestTimeout,
		})
		if err != nil {
			return nil, err
		}
	}
	return &connection{
		client:       client,
		raw:          &http.Client{Timeout: cfg.RequestTimeout, Transport: &http.Transport{TLSClientConfig: tlsCfg}},
		rawStreaming: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}},
		reqGen:       rata.NewRequestGenerator(cfg.URL, bbs.Routes),
	}, nil
}

// rawResponse is what a raw POST returned.
type rawResponse struct {
	Status      int
	ContentType string
	Body        []byte
}

// rawPost POSTs a gogo-marshalled request to a named route of bbs.Routes, like the real client
// does (Content-Type application/x-protobuf), and returns the undecoded answer.
func (c *connection) rawPost(route string, req proto.Message) (*rawResponse, error) {
	var body []byte
	if req != nil {
		var err error
		if body, err = proto.Marshal(req); err != nil {
			return nil, err
		}
	}
	httpReq, err := c.reqGen.CreateRequest(route, nil, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	httpReq.ContentLength = int64(len(body))
	httpReq.Header.Set("Content-Type", bbs.ProtoContentType)
	resp, err := c.raw.Do(httpReq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return &rawResponse{Status: resp.StatusCode, ContentType: ct, Body: data}, nil
}

// rawCall POSTs like rawPost and decodes the protobuf answer into resp, failing on anything the
// real client would not accept as a protobuf answer.
func (c *connection) rawCall(route string, req, resp proto.Message) error {
	r, err := c.rawPost(route, req)
	if err != nil {
		return err
	}
	if r.Status != http.StatusOK {
		return fmt.Errorf("HTTP status %d (want 200), body %q", r.Status, truncate(string(r.Body), 200))
	}
	if r.ContentType != bbs.ProtoContentType {
		return fmt.Errorf("Content-Type %q (want %s)", r.ContentType, bbs.ProtoContentType)
	}
	if err := proto.Unmarshal(r.Body, resp); err != nil {
		return fmt.Errorf("cannot unmarshal %T: %v", resp, err)
	}
	return nil
}

// ---------------------------------------------------------------------------------------------
// Session: one scenario run.

type session struct {
	cfg      *config
	conn     *connection
	client   bbs.InternalClient
	rep      *reporter
	scenario string
	logger   lager.Logger
	runID    string
	guids    []string // every task guid desired by this session, for cleanup
}

func newSession(cfg *config, conn *connection, rep *reporter, scenario string) *session {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	logger := lager.NewLogger("bbsconformance")
	return &session{
		cfg: cfg, conn: conn, client: conn.client, rep: rep, scenario: scenario,
		logger: logger, runID: hex.EncodeToString(b),
	}
}

// check records one check; err == nil means it passed. okDetail describes a pass.
func (s *session) check(name string, err error, okDetail string) bool {
	res := result{Check: s.scenario + "/" + name, OK: err == nil, Detail: okDetail}
	if err != nil {
		res.Detail = err.Error()
	}
	s.rep.report(res)
	return err == nil
}

// step is one entry of a table-driven scenario.
type step struct {
	name string
	run  func() (detail string, err error)
}

// reachesCompleted waits for the server to run task guid to Completed (or on to Resolving) and
// keeps what it saw in *final.
func (s *session) reachesCompleted(guid string, final **models.Task) step {
	return step{"reaches-completed", func() (string, error) {
		t, seen, err := s.waitForState(guid, s.cfg.Timeout, models.Task_Completed, models.Task_Resolving)
		*final = t
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("states seen %v; %s", seen, summary(t)), nil
	}}
}

func (s *session) runSteps(steps []step) {
	for _, st := range steps {
		detail, err := st.run()
		s.check(st.name, err, detail)
	}
}

// guid returns a task guid unique to this run (matches ^[a-zA-Z0-9_-]+$).
func (s *session) guid(label string) string {
	g := fmt.Sprintf("conf-%s-%s-%s", s.scenario, label, s.runID)
	s.guids = append(s.guids, g)
	return g
}

// preflight verifies the server answers at all, so that an unreachable server produces one clear
// failure ("connection refused") per scenario instead of dozens.
func (s *session) preflight() bool {
	r, err := s.conn.rawPost(bbs.PingRoute_r0, nil)
	if err != nil {
		s.check("preflight", fmt.Errorf("server unreachable, scenario skipped: %v", err), "")
		return false
	}
	if r.Status != http.StatusOK {
		s.check("preflight", fmt.Errorf("POST /v1/ping answered HTTP %d, scenario skipped", r.Status), "")
		return false
	}
	return true
}

// cleanup makes a best effort to remove every task this session desired. Not reported.
func (s *session) cleanup() {
	for _, g := range s.guids {
		task, err := s.client.TaskByGuid(s.logger, "", g)
		if err != nil || task == nil {
			continue
		}
		if task.State == models.Task_Pending || task.State == models.Task_Running {
			_ = s.client.CancelTask(s.logger, "", g)
		}
		if task.State != models.Task_Resolving {
			_ = s.client.ResolvingTask(s.logger, "", g)
		}
		_ = s.client.DeleteTask(s.logger, "", g)
	}
	s.guids = nil
}

// waitForState polls TaskByGuid until the task is in one of the wanted states or timeout. It
// returns the last task seen and the distinct states observed, in order.
func (s *session) waitForState(guid string, timeout time.Duration, want ...models.Task_State) (*models.Task, []string, error) {
	deadline := time.Now().Add(timeout)
	var seen []string
	var last *models.Task
	for {
		task, err := s.client.TaskByGuid(s.logger, "", guid)
		if err == nil && task != nil {
			last = task
			st := task.State.String()
			if len(seen) == 0 || seen[len(seen)-1] != st {
				seen = append(seen, st)
			}
			for _, w := range want {
				if task.State == w {
					return task, seen, nil
				}
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return last, seen, fmt.Errorf("timed out after %s waiting for %v (states seen %v); last error: %v", timeout, want, seen, err)
			}
			return last, seen, fmt.Errorf("timed out after %s waiting for %v (states seen %v)", timeout, want, seen)
		}
		time.Sleep(time.Second)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
