package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/tasks"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// problems collects the mismatches of one check; err() is nil when there are none.
type problems []string

func (p *problems) add(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

// eq records a mismatch when got != want.
func (p *problems) eq(name string, got, want any) {
	if got != want {
		p.add("%s: got %q, want %q", name, fmt.Sprint(got), fmt.Sprint(want))
	}
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return errors.New(strings.Join(p, "; "))
}

// describeErr names an error; for a gophercloud response-code error, the method, URL, status
// and (truncated) body.
func describeErr(err error) string {
	if err == nil {
		return "no error"
	}
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		body := strings.TrimSpace(string(code.Body))
		if len(body) > 300 {
			body = body[:300] + "…"
		}
		return fmt.Sprintf("HTTP %d from %s %s: %s", code.Actual, code.Method, code.URL, body)
	}
	return err.Error()
}

// wantCode expects err to be a gophercloud response-code error with the given status.
func wantCode(what string, err error, status int) error {
	if err == nil {
		return fmt.Errorf("%s: succeeded, want HTTP %d", what, status)
	}
	if !gophercloud.ResponseCodeIs(err, status) {
		return fmt.Errorf("%s: %s, want HTTP %d", what, describeErr(err), status)
	}
	return nil
}

// canonJSON round-trips v through JSON so that values decoded by different paths (json.Number
// in gophercloud's raw bodies, float64 after Extract, int in our own literals) compare equal.
func canonJSON(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	err = json.Unmarshal(b, &out)
	return out, err
}

func jsonEqual(a, b any) bool {
	ca, err1 := canonJSON(a)
	cb, err2 := canonJSON(b)
	return err1 == nil && err2 == nil && reflect.DeepEqual(ca, cb)
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func isUUID(s string) bool { return uuidRe.MatchString(strings.ToLower(s)) }

// randomUUID returns a version 4 UUID.
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// rawObject is the JSON object gophercloud kept in a Create/Get result's Body. The typed Task
// cannot tell an absent expires_at from a zero one, nor a null result from an absent one.
func rawObject(body any) (map[string]any, error) {
	m, ok := body.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("response body is %T, want a JSON object", body)
	}
	return m, nil
}

// timeField reports whether the raw object has key as a non-null string that parses as an
// RFC 3339 time (which is also what gophercloud's time.Time fields require).
func timeField(raw map[string]any, key string) (time.Time, error) {
	v, ok := raw[key]
	if !ok {
		return time.Time{}, fmt.Errorf("%s is absent", key)
	}
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("%s is %s, want an RFC 3339 string", key, compactJSON(v))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not RFC 3339", key, s)
	}
	return t, nil
}

// listing is everything one tasks.List(...).AllPages returned: the typed tasks (ExtractTasks)
// and the same items as raw JSON objects, in the same order.
type listing struct {
	tasks []tasks.Task
	raw   []map[string]any
}

func (l listing) ids() []string {
	out := make([]string, len(l.tasks))
	for i, t := range l.tasks {
		out[i] = t.ID
	}
	return out
}

// listAll fetches every page through gophercloud's pager.
func listAll(ctx context.Context, c *gophercloud.ServiceClient, opts tasks.ListOptsBuilder) (listing, error) {
	page, err := tasks.List(c, opts).AllPages(ctx)
	if err != nil {
		return listing{}, err
	}
	return extractListing(page)
}

func extractListing(page pagination.Page) (listing, error) {
	all, err := tasks.ExtractTasks(page)
	if err != nil {
		return listing{}, fmt.Errorf("ExtractTasks: %w", err)
	}
	var raw struct {
		Tasks []map[string]any `json:"tasks"`
	}
	if err := page.(tasks.TaskPage).ExtractInto(&raw); err != nil {
		return listing{}, fmt.Errorf("raw tasks: %w", err)
	}
	if len(raw.Tasks) != len(all) {
		return listing{}, fmt.Errorf("ExtractTasks gave %d tasks, the raw body %d", len(all), len(raw.Tasks))
	}
	return listing{tasks: all, raw: raw.Tasks}, nil
}

// duplicates returns the ids that occur more than once.
func duplicates(ids []string) []string {
	seen := map[string]int{}
	var dup []string
	for _, id := range ids {
		seen[id]++
		if seen[id] == 2 {
			dup = append(dup, id)
		}
	}
	return dup
}

// sameSet compares two id lists as sets (each list assumed free of duplicates) and describes
// the difference.
func sameSet(got, want []string) error {
	g := map[string]bool{}
	for _, id := range got {
		g[id] = true
	}
	w := map[string]bool{}
	for _, id := range want {
		w[id] = true
	}
	var missing, extra []string
	for _, id := range want {
		if !g[id] {
			missing = append(missing, id)
		}
	}
	for _, id := range got {
		if !w[id] {
			extra = append(extra, id)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return nil
	}
	return fmt.Errorf("%d missing %s, %d unexpected %s", len(missing), abbrev(missing), len(extra), abbrev(extra))
}

// abbrev shows at most five ids.
func abbrev(ids []string) string {
	if len(ids) > 5 {
		return fmt.Sprintf("%v…", ids[:5])
	}
	return fmt.Sprintf("%v", ids)
}

func isFinal(status string) bool {
	return status == string(tasks.TaskStatusSuccess) || status == string(tasks.TaskStatusFailure)
}
