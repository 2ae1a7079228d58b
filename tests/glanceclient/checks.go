package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/tasks"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// pageSize is the limit list-all-pages and sort page with.
const pageSize = 25

// run is the state shared by the checks, in the order they run.
type run struct {
	cfg     *config
	ctx     context.Context
	rep     *reporter
	counter *countingTransport
	client  *gophercloud.ServiceClient // -token
	noToken *gophercloud.ServiceClient // no X-Auth-Token at all
	denied  *gophercloud.ServiceClient // -denied-token

	realID, failingID string
	manyIDs           []string

	// all is the unfiltered listing of list-all-pages (nil when it failed).
	all *listing
}

func (r *run) runAll() {
	r.checkCreateRealAndFailing()
	r.rep.report("get", r.checkGet())
	r.rep.report("create-many", r.checkCreateMany())
	r.rep.report("list-all-pages", r.checkListAllPages())
	r.rep.report("filter-status", r.checkFilterStatus())
	r.rep.report("filter-type", r.checkFilterType())
	r.rep.report("sort", r.checkSort())
	r.rep.report("bad-marker", r.checkBadMarker())
	r.rep.report("no-token", r.checkNoToken())
	r.rep.report("denied", r.checkDenied())
	r.rep.report("delete-405", r.checkDelete405())
	r.rep.report("schemas", r.checkSchemas())
}

// ---------------------------------------------------------------------------------------------
// 1, 2: create-real, create-failing

var (
	realInput    = map[string]any{"word": "hello", "n": 3, "nested": map[string]any{"ok": true}}
	failingInput = map[string]any{}
)

// created is a task right after tasks.Create.
type created struct {
	task *tasks.Task
	err  error // creation failed or the answer is wrong
}

// checkCreateRealAndFailing creates both tasks before waiting for either, so their run times
// overlap, then reports create-real and create-failing in that order.
func (r *run) checkCreateRealAndFailing() {
	realTask := r.create(r.cfg.RealType, realInput)
	if realTask.task != nil {
		r.realID = realTask.task.ID
	}
	failingTask := r.create(r.cfg.FailingType, failingInput)
	if failingTask.task != nil {
		r.failingID = failingTask.task.ID
	}

	r.rep.report("create-real", r.finishReal(realTask))
	r.rep.report("create-failing", r.finishFailing(failingTask))
}

// create calls tasks.Create and checks the 201 answer (tasks.Create accepts no other code).
func (r *run) create(typ string, input map[string]any) created {
	res := tasks.Create(r.ctx, r.client, tasks.CreateOpts{Type: typ, Input: input})
	if res.Err != nil {
		return created{err: fmt.Errorf("tasks.Create(type %q): %s", typ, describeErr(res.Err))}
	}
	t, err := res.Extract()
	if err != nil || t == nil {
		return created{err: fmt.Errorf("tasks.Create(type %q): Extract: %v", typ, err)}
	}
	raw, err := rawObject(res.Body)
	if err != nil {
		return created{task: t, err: err}
	}
	var p problems
	r.checkCommon(&p, t, typ, input)
	if t.Status != string(tasks.TaskStatusPending) && t.Status != string(tasks.TaskStatusProcessing) {
		p.add("status %q, want pending or processing", t.Status)
	}
	if _, ok := raw["expires_at"]; ok {
		p.add("expires_at %s present on a task that is not final", compactJSON(raw["expires_at"]))
	}
	loc := res.Header.Get("Location")
	if !strings.HasSuffix(loc, "/v2/tasks/"+t.ID) {
		p.add("Location %q, want it to end with /v2/tasks/%s", loc, t.ID)
	}
	for _, key := range []string{"created_at", "updated_at"} {
		if _, err := timeField(raw, key); err != nil {
			p.add("%v", err)
		}
	}
	return created{task: t, err: p.err()}
}

// checkCommon checks what every full task representation of ours must say.
func (r *run) checkCommon(p *problems, t *tasks.Task, typ string, input map[string]any) {
	if !isUUID(t.ID) {
		p.add("id %q is not a UUID", t.ID)
	}
	p.eq("type", t.Type, typ)
	if !jsonEqual(t.Input, input) {
		p.add("input %s, want %s", compactJSON(t.Input), compactJSON(input))
	}
	p.eq("owner", t.Owner, r.cfg.ExpectOwner)
	p.eq("self", t.Self, "/v2/tasks/"+t.ID)
	p.eq("schema", t.Schema, "/v2/schemas/task")
}

// waitFinal polls tasks.Get until the task is success or failure.
func (r *run) waitFinal(id string) (*tasks.Task, map[string]any, error) {
	start := time.Now()
	deadline := start.Add(r.cfg.Timeout)
	last := ""
	for {
		res := tasks.Get(r.ctx, r.client, id)
		if res.Err != nil {
			return nil, nil, fmt.Errorf("tasks.Get(%s): %s", id, describeErr(res.Err))
		}
		t, err := res.Extract()
		if err != nil || t == nil {
			return nil, nil, fmt.Errorf("tasks.Get(%s): Extract: %v", id, err)
		}
		last = t.Status
		if isFinal(t.Status) {
			raw, err := rawObject(res.Body)
			if err != nil {
				return nil, nil, err
			}
			info("task %s (%s) became %s after %s", id, t.Type, t.Status, time.Since(start).Round(time.Millisecond))
			return t, raw, nil
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("task %s still %q after %s", id, last, r.cfg.Timeout)
		}
		time.Sleep(r.cfg.PollInterval)
	}
}

// checkFinal checks what a final task must say besides its status.
func checkFinal(p *problems, t *tasks.Task, raw map[string]any) {
	if _, err := timeField(raw, "expires_at"); err != nil {
		p.add("final task: %v", err)
	} else if t.ExpiresAt.IsZero() {
		p.add("final task: gophercloud's ExpiresAt is zero")
	}
}

// finishReal waits for the real task even when its creation answer was wrong, so the checks
// after it see a final task.
func (r *run) finishReal(c created) error {
	if c.task == nil {
		return c.err
	}
	var p problems
	if c.err != nil {
		p.add("task %s on creation: %v", c.task.ID, c.err)
	}
	t, raw, err := r.waitFinal(c.task.ID)
	if err != nil {
		p.add("%v", err)
		return p.err()
	}
	r.checkCommon(&p, t, r.cfg.RealType, realInput)
	if t.Status != string(tasks.TaskStatusSuccess) {
		p.add("final status %q (message %q), want success", t.Status, t.Message)
	} else if !jsonEqual(t.Result, realInput) {
		p.add("result %s, want the input %s", compactJSON(raw["result"]), compactJSON(realInput))
	}
	checkFinal(&p, t, raw)
	return p.err()
}

func (r *run) finishFailing(c created) error {
	if c.task == nil {
		return c.err
	}
	var p problems
	if c.err != nil {
		p.add("task %s on creation: %v", c.task.ID, c.err)
	}
	t, raw, err := r.waitFinal(c.task.ID)
	if err != nil {
		p.add("%v", err)
		return p.err()
	}
	r.checkCommon(&p, t, r.cfg.FailingType, failingInput)
	if t.Status != string(tasks.TaskStatusFailure) {
		p.add("final status %q, want failure", t.Status)
	}
	if !strings.Contains(t.Message, r.cfg.ExpectMessage) {
		p.add("message %q does not contain %q", t.Message, r.cfg.ExpectMessage)
	}
	checkFinal(&p, t, raw)
	return p.err()
}

// ---------------------------------------------------------------------------------------------
// 3: get

func (r *run) checkGet() error {
	if r.realID == "" {
		return errors.New("no real task (create-real could not create it)")
	}
	t, err := tasks.Get(r.ctx, r.client, r.realID).Extract()
	if err != nil {
		return fmt.Errorf("tasks.Get(%s): %s", r.realID, describeErr(err))
	}
	var p problems
	p.eq("id", t.ID, r.realID)
	p.eq("type", t.Type, r.cfg.RealType)
	p.eq("status", t.Status, string(tasks.TaskStatusSuccess))
	p.eq("owner", t.Owner, r.cfg.ExpectOwner)
	if !jsonEqual(t.Input, realInput) {
		p.add("input %s, want %s", compactJSON(t.Input), compactJSON(realInput))
	}
	return p.err()
}

// ---------------------------------------------------------------------------------------------
// 4: create-many

func (r *run) checkCreateMany() error {
	var p problems
	wrong := 0
	for i := range r.cfg.Count {
		input := map[string]any{"i": i}
		c := r.create(r.cfg.FastType, input)
		if c.task == nil {
			p.add("task %d: %v", i, c.err)
			return p.err() // the server refuses to create: waiting makes no sense
		}
		r.manyIDs = append(r.manyIDs, c.task.ID)
		if c.err != nil {
			if wrong++; wrong <= 3 {
				p.add("task %d (%s): %v", i, c.task.ID, c.err)
			}
		}
	}
	if wrong > 3 {
		p.add("… %d of %d creation answers wrong in all", wrong, r.cfg.Count)
	}

	// Wait through the listing (not tasks.Get) until every one of them is final.
	start := time.Now()
	deadline := start.Add(r.cfg.Timeout)
	for {
		l, err := listAll(r.ctx, r.client, tasks.ListOpts{Limit: 1000})
		if err != nil {
			p.add("listing while waiting: %s", describeErr(err))
			return p.err()
		}
		status := map[string]string{}
		for _, t := range l.tasks {
			status[t.ID] = t.Status
		}
		var notFinal []string
		counts := map[string]int{}
		for _, id := range r.manyIDs {
			st, ok := status[id]
			if !ok {
				st = "<not listed>"
			}
			counts[st]++
			if !isFinal(st) {
				notFinal = append(notFinal, id+"="+st)
			}
		}
		if len(notFinal) == 0 {
			info("create-many: %d tasks final after %s: %v", len(r.manyIDs), time.Since(start).Round(time.Millisecond), counts)
			return p.err()
		}
		if time.Now().After(deadline) {
			p.add("after %s, %d of %d tasks not final: %s", r.cfg.Timeout, len(notFinal), len(r.manyIDs), abbrev(notFinal))
			return p.err()
		}
		time.Sleep(time.Second)
	}
}

// ---------------------------------------------------------------------------------------------
// 5: list-all-pages

// expectedPageRequests is how many GETs gophercloud's pager makes for total tasks when the
// server sets "next" exactly when a page is full. Pager.AllPages fetches the first page, then
// EachPage stops at the first page that is empty (TaskPage.IsEmpty) or has no next link
// (TaskPage.NextPageURL == ""). Pages 1..total/pageSize are full and carry "next"; page
// total/pageSize+1 is partial (no next) or, when total%pageSize == 0, empty: so
// total/pageSize + 1 requests, e.g. 62 → 3, 50 → 3, 24 → 1, 0 → 1.
// That equals ceil(total/pageSize) + (1 if total%pageSize == 0).
func expectedPageRequests(total int) int {
	return total/pageSize + 1
}

func (r *run) checkListAllPages() error {
	r.counter.reset()
	page, err := tasks.List(r.client, tasks.ListOpts{Limit: pageSize}).AllPages(r.ctx)
	gets := r.counter.getRequests()
	if err != nil {
		return fmt.Errorf("AllPages: %s", describeErr(err))
	}
	l, err := extractListing(page)
	if err != nil {
		return err
	}
	r.all = &l

	var p problems
	ids := l.ids()
	if dup := duplicates(ids); len(dup) > 0 {
		p.add("ids listed more than once: %s", abbrev(dup))
	}
	listed := map[string]int{}
	for _, id := range ids {
		listed[id]++
	}
	var missing []string
	for _, id := range r.manyIDs {
		if listed[id] != 1 {
			missing = append(missing, fmt.Sprintf("%s×%d", id, listed[id]))
		}
	}
	if len(missing) > 0 {
		p.add("%d create-many tasks not listed exactly once: %s", len(missing), abbrev(missing))
	}
	for name, id := range map[string]string{"real": r.realID, "failing": r.failingID} {
		if id != "" && listed[id] != 1 {
			p.add("%s task %s listed %d times", name, id, listed[id])
		}
	}
	if want := r.cfg.Count + 2; len(ids) != want {
		p.add("%d tasks listed, want %d (-count + 2)", len(ids), want)
	}
	if want := expectedPageRequests(len(ids)); len(gets) != want {
		p.add("%d GET requests for %d tasks, want %d: %v", len(gets), len(ids), want, gets)
	}
	for _, g := range gets {
		if !strings.HasPrefix(g, "/v2/tasks") {
			p.add("pager requested %s, outside /v2/tasks", g)
		}
	}
	info("list-all-pages: %d tasks in %d GET requests: %v", len(ids), len(gets), gets)

	// The envelope of each page, which AllPages throws away.
	r.checkPageEnvelopes(&p)
	return p.err()
}

// checkPageEnvelopes walks the same listing with EachPage and checks each page's first, schema
// and next, and that list items are sparse (no input, result, message).
func (r *run) checkPageEnvelopes(p *problems) {
	pageNo := 0
	err := tasks.List(r.client, tasks.ListOpts{Limit: pageSize}).EachPage(r.ctx, func(_ context.Context, pg pagination.Page) (bool, error) {
		pageNo++
		body, ok := pg.(tasks.TaskPage).Body.(map[string]any)
		if !ok {
			p.add("page %d: body is %T, want a JSON object", pageNo, pg.(tasks.TaskPage).Body)
			return false, nil
		}
		items, _ := body["tasks"].([]any)
		if s, _ := body["schema"].(string); s != "/v2/schemas/tasks" {
			p.add("page %d: schema %s, want \"/v2/schemas/tasks\"", pageNo, compactJSON(body["schema"]))
		}
		if s, _ := body["first"].(string); !strings.HasPrefix(s, "/v2/tasks") {
			p.add("page %d: first %s, want /v2/tasks…", pageNo, compactJSON(body["first"]))
		}
		next, hasNext := body["next"]
		switch {
		case len(items) == pageSize && !hasNext:
			p.add("page %d: full page (%d) without next", pageNo, len(items))
		case len(items) < pageSize && hasNext:
			p.add("page %d: %d < %d items but next %s", pageNo, len(items), pageSize, compactJSON(next))
		case hasNext:
			lastID := ""
			if last, ok := items[len(items)-1].(map[string]any); ok {
				lastID, _ = last["id"].(string)
			}
			s, _ := next.(string)
			u, err := url.Parse(s)
			switch {
			case err != nil || u.Path != "/v2/tasks":
				p.add("page %d: next %s, want /v2/tasks?…", pageNo, compactJSON(next))
			case u.Query().Get("marker") != lastID:
				p.add("page %d: next %q, want marker=%s (the last id)", pageNo, s, lastID)
			case effectiveLimit(u.Query()) != pageSize:
				p.add("page %d: next %q does not keep limit=%d", pageNo, s, pageSize)
			}
		}
		for _, it := range items {
			m, _ := it.(map[string]any)
			for _, key := range []string{"input", "result", "message"} {
				if _, ok := m[key]; ok {
					p.add("page %d: list item %v has %q (list items are sparse)", pageNo, m["id"], key)
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		p.add("EachPage: %s", describeErr(err))
	}
}

// effectiveLimit is the page size a query asks for: its limit, else the default 25 (a server
// may leave a default limit out of its next link).
func effectiveLimit(q url.Values) int {
	if !q.Has("limit") {
		return 25
	}
	n, err := strconv.Atoi(q.Get("limit"))
	if err != nil {
		return -1
	}
	return n
}

// ---------------------------------------------------------------------------------------------
// 6: filter-status

func (r *run) checkFilterStatus() error {
	if r.all == nil {
		return errors.New("no unfiltered listing (list-all-pages could not list)")
	}
	var p problems
	for _, st := range []tasks.TaskStatus{tasks.TaskStatusSuccess, tasks.TaskStatusFailure} {
		l, err := listAll(r.ctx, r.client, tasks.ListOpts{Limit: pageSize, Status: st})
		if err != nil {
			p.add("status=%s: %s", st, describeErr(err))
			continue
		}
		var want []string
		for _, t := range r.all.tasks {
			if t.Status == string(st) {
				want = append(want, t.ID)
			}
		}
		for _, t := range l.tasks {
			if t.Status != string(st) {
				p.add("status=%s lists %s with status %q", st, t.ID, t.Status)
				break
			}
		}
		if len(l.tasks) != len(want) {
			p.add("status=%s: %d tasks, the unfiltered list has %d", st, len(l.tasks), len(want))
		}
		if err := sameSet(l.ids(), want); err != nil {
			p.add("status=%s vs the unfiltered list: %v", st, err)
		}
		info("filter-status: status=%s → %d tasks", st, len(l.tasks))
	}
	return p.err()
}

// ---------------------------------------------------------------------------------------------
// 7: filter-type

// queryOpts is a tasks.ListOptsBuilder that sends exactly the given query parameters.
//
// gophercloud's own tasks.ListOpts cannot filter by type: its Type (and ID) field is tagged
// `json:"type"`, not `q:"type"` (openstack/image/v2/tasks/requests.go, ListOpts), and
// ListOpts.ToTaskListQuery is gophercloud.BuildQueryString(opts), which only looks at fields with
// a `q` tag (params.go, BuildQueryString: `qTag := f.Tag.Get("q")`; `if qTag != "" {`). So
// ListOpts{Type: "x"} silently lists every type.
type queryOpts url.Values

func (q queryOpts) ToTaskListQuery() (string, error) {
	return "?" + url.Values(q).Encode(), nil
}

func (r *run) checkFilterType() error {
	if q, _ := (tasks.ListOpts{Type: r.cfg.FastType}).ToTaskListQuery(); strings.Contains(q, "type=") {
		info("filter-type: note: this gophercloud sends ListOpts.Type (%q)", q)
	}
	if r.all == nil {
		return errors.New("no unfiltered listing (list-all-pages could not list)")
	}
	var p problems

	l, err := listAll(r.ctx, r.client, queryOpts{"type": {r.cfg.FastType}, "limit": {"1000"}})
	if err != nil {
		p.add("type=%s&limit=1000: %s", r.cfg.FastType, describeErr(err))
	} else {
		for _, t := range l.tasks {
			if t.Type != r.cfg.FastType {
				p.add("type=%s lists %s of type %q", r.cfg.FastType, t.ID, t.Type)
				break
			}
		}
		if len(l.tasks) != r.cfg.Count {
			p.add("type=%s: %d tasks, want %d (-count)", r.cfg.FastType, len(l.tasks), r.cfg.Count)
		}
		if err := sameSet(l.ids(), r.manyIDs); err != nil {
			p.add("type=%s vs create-many: %v", r.cfg.FastType, err)
		}
		info("filter-type: type=%s → %d tasks", r.cfg.FastType, len(l.tasks))
	}

	// Both filters, default limit: pages through next links, which must keep both.
	var want []string
	for _, t := range r.all.tasks {
		if t.Type == r.cfg.FastType && t.Status == string(tasks.TaskStatusSuccess) {
			want = append(want, t.ID)
		}
	}
	l, err = listAll(r.ctx, r.client, queryOpts{"type": {r.cfg.FastType}, "status": {"success"}})
	if err != nil {
		p.add("type=%s&status=success: %s", r.cfg.FastType, describeErr(err))
	} else {
		for _, t := range l.tasks {
			if t.Type != r.cfg.FastType || t.Status != string(tasks.TaskStatusSuccess) {
				p.add("type=%s&status=success lists %s (%s, %s)", r.cfg.FastType, t.ID, t.Type, t.Status)
				break
			}
		}
		if len(l.tasks) != len(want) {
			p.add("type=%s&status=success: %d tasks, the unfiltered list has %d", r.cfg.FastType, len(l.tasks), len(want))
		}
		if err := sameSet(l.ids(), want); err != nil {
			p.add("type=%s&status=success vs the unfiltered list: %v", r.cfg.FastType, err)
		}
		info("filter-type: type=%s&status=success → %d tasks", r.cfg.FastType, len(l.tasks))
	}
	return p.err()
}

// ---------------------------------------------------------------------------------------------
// 8: sort

var sortKeys = []string{"created_at", "expires_at", "status", "type", "updated_at"}

// compareBy orders two tasks by (key, created_at, id), the order the server must produce (it
// appends created_at and id as tie-breakers in the requested direction). Times compare as
// times, status and type as strings.
func compareBy(key string, a, b tasks.Task) int {
	var c int
	switch key {
	case "created_at":
		c = a.CreatedAt.Compare(b.CreatedAt)
	case "expires_at":
		c = a.ExpiresAt.Compare(b.ExpiresAt)
	case "updated_at":
		c = a.UpdatedAt.Compare(b.UpdatedAt)
	case "status":
		c = strings.Compare(a.Status, b.Status)
	case "type":
		c = strings.Compare(a.Type, b.Type)
	}
	if c == 0 {
		c = a.CreatedAt.Compare(b.CreatedAt)
	}
	if c == 0 {
		c = strings.Compare(a.ID, b.ID)
	}
	return c
}

func sortValue(key string, t tasks.Task) string {
	switch key {
	case "created_at":
		return t.CreatedAt.Format(time.RFC3339Nano)
	case "expires_at":
		return t.ExpiresAt.Format(time.RFC3339Nano)
	case "updated_at":
		return t.UpdatedAt.Format(time.RFC3339Nano)
	case "status":
		return t.Status
	case "type":
		return t.Type
	}
	return ""
}

// checkOrder returns the first pair out of (key, created_at, id) order for dir.
func checkOrder(key, dir string, l []tasks.Task) error {
	for i := 1; i < len(l); i++ {
		c := compareBy(key, l[i-1], l[i])
		if (dir == "asc" && c > 0) || (dir == "desc" && c < 0) {
			return fmt.Errorf("item %d (%s=%s, created_at=%s, id=%s) before item %d (%s=%s, created_at=%s, id=%s)",
				i-1, key, sortValue(key, l[i-1]), sortValue("created_at", l[i-1]), l[i-1].ID,
				i, key, sortValue(key, l[i]), sortValue("created_at", l[i]), l[i].ID)
		}
	}
	return nil
}

func (r *run) checkSort() error {
	if r.all == nil {
		return errors.New("no unfiltered listing (list-all-pages could not list)")
	}
	var p problems
	allIDs := r.all.ids()
	// The default order (no sort_key, no sort_dir) is created_at desc.
	if err := checkOrder("created_at", "desc", r.all.tasks); err != nil {
		p.add("default order (created_at desc): %v", err)
	}
	for _, key := range sortKeys {
		for _, dir := range []string{"asc", "desc"} {
			l, err := listAll(r.ctx, r.client, tasks.ListOpts{Limit: pageSize, SortKey: key, SortDir: dir})
			if err != nil {
				p.add("%s %s: %s", key, dir, describeErr(err))
				continue
			}
			ids := l.ids()
			if dup := duplicates(ids); len(dup) > 0 {
				p.add("%s %s: ids listed more than once: %s", key, dir, abbrev(dup))
			}
			if err := sameSet(ids, allIDs); err != nil {
				p.add("%s %s vs the unfiltered list: %v", key, dir, err)
			}
			// All tasks are final by now, so each has the sort key; a missing one (which
			// gophercloud would turn into the zero time) would make the order meaningless.
			missing := false
			for i, raw := range l.raw {
				for _, k := range []string{key, "created_at"} {
					if k != "status" && k != "type" {
						if _, err := timeField(raw, k); err != nil {
							p.add("%s %s: task %s: %v", key, dir, l.tasks[i].ID, err)
							missing = true
						}
					}
				}
				if missing {
					break
				}
			}
			if missing {
				continue
			}
			if err := checkOrder(key, dir, l.tasks); err != nil {
				p.add("%s %s: %v", key, dir, err)
			}
		}
	}
	return p.err()
}

// ---------------------------------------------------------------------------------------------
// 9-12: errors

func (r *run) checkBadMarker() error {
	_, err := tasks.List(r.client, tasks.ListOpts{Limit: pageSize, Marker: randomUUID()}).AllPages(r.ctx)
	return wantCode("list with an unknown marker", err, http.StatusBadRequest)
}

// someID is an existing task when there is one, else a random id.
func (r *run) someID() string {
	if r.realID != "" {
		return r.realID
	}
	if len(r.manyIDs) > 0 {
		return r.manyIDs[0]
	}
	return randomUUID()
}

func (r *run) checkNoToken() error {
	var p problems
	_, err := tasks.List(r.noToken, nil).AllPages(r.ctx)
	if err := wantCode("list", err, http.StatusUnauthorized); err != nil {
		p.add("%v", err)
	}
	_, err = tasks.Get(r.ctx, r.noToken, r.someID()).Extract()
	if err := wantCode("get", err, http.StatusUnauthorized); err != nil {
		p.add("%v", err)
	}
	return p.err()
}

func (r *run) checkDenied() error {
	var p problems
	_, err := tasks.List(r.denied, nil).AllPages(r.ctx)
	if err := wantCode("list", err, http.StatusForbidden); err != nil {
		p.add("%v", err)
	}
	t, err := tasks.Create(r.ctx, r.denied, tasks.CreateOpts{Type: r.cfg.FastType, Input: map[string]any{"denied": true}}).Extract()
	if err := wantCode("create", err, http.StatusForbidden); err != nil {
		if t != nil {
			err = fmt.Errorf("%w (created task %s)", err, t.ID)
		}
		p.add("%v", err)
	}
	return p.err()
}

// checkDelete405: the tasks package has no Delete, so DELETE goes through the service client.
// DELETE's default OkCodes are 202 and 204, so a 405 comes back as ErrUnexpectedResponseCode,
// which carries the response headers.
func (r *run) checkDelete405() error {
	id := r.someID()
	_, err := r.client.Delete(r.ctx, r.client.ServiceURL("tasks", id), nil)
	if err := wantCode("DELETE /v2/tasks/"+id, err, http.StatusMethodNotAllowed); err != nil {
		return err
	}
	var p problems
	var code gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &code) {
		if allow := code.ResponseHeader.Values("Allow"); len(allow) != 1 || allow[0] != "GET" {
			p.add("Allow header %q, want \"GET\"", allow)
		}
	}
	if id == r.realID {
		if _, err := tasks.Get(r.ctx, r.client, id).Extract(); err != nil {
			p.add("task %s after the refused DELETE: %s", id, describeErr(err))
		}
	}
	return p.err()
}

// ---------------------------------------------------------------------------------------------
// 13: schemas

func (r *run) checkSchemas() error {
	var p problems
	for _, s := range []struct {
		path  string
		name  string
		props []string
	}{
		{"task", "task", []string{"id", "type", "status", "input", "result", "owner", "message", "expires_at", "created_at", "updated_at", "self", "schema"}},
		{"tasks", "tasks", []string{"tasks"}},
	} {
		var m map[string]any
		resp, err := r.client.Get(r.ctx, r.client.ServiceURL("schemas", s.path), &m, nil)
		if err != nil {
			p.add("GET /v2/schemas/%s: %s", s.path, describeErr(err))
			continue
		}
		if resp.StatusCode != http.StatusOK {
			p.add("GET /v2/schemas/%s: HTTP %d, want 200", s.path, resp.StatusCode)
		}
		if name, _ := m["name"].(string); name != s.name {
			p.add("schema %s: name %s, want %q", s.path, compactJSON(m["name"]), s.name)
		}
		props, ok := m["properties"].(map[string]any)
		if !ok {
			p.add("schema %s: properties %s, want an object", s.path, compactJSON(m["properties"]))
			continue
		}
		for _, k := range s.props {
			if _, ok := props[k]; !ok {
				p.add("schema %s: no property %q", s.path, k)
			}
		}
	}
	return p.err()
}
