package main

import (
	"bytes"
	"fmt"
	"net/http"
	"time"

	"code.cloudfoundry.org/bbs"
	"code.cloudfoundry.org/bbs/events"
	"code.cloudfoundry.org/bbs/format"
	"code.cloudfoundry.org/bbs/models"
	"github.com/vito/go-sse/sse"
)

// eventStream reads an events.EventSource in the background.
type eventStream struct {
	src    events.EventSource
	events chan models.Event
	errs   chan error
}

func newEventStream(src events.EventSource) *eventStream {
	es := &eventStream{src: src, events: make(chan models.Event, 256), errs: make(chan error, 1)}
	go func() {
		for {
			ev, err := src.Next()
			if err != nil {
				es.errs <- err
				return
			}
			es.events <- ev
		}
	}()
	return es
}

// next returns the next event about guid (events about other tasks are skipped).
func (es *eventStream) next(guid string, timeout time.Duration) (models.Event, error) {
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-es.events:
			if ev.Key() == guid {
				return ev, nil
			}
		case err := <-es.errs:
			es.errs <- err // keep reporting it
			return nil, fmt.Errorf("event stream ended: %v", err)
		case <-deadline:
			return nil, fmt.Errorf("no event for %s within %s", guid, timeout)
		}
	}
}

// subscribeTasksR0 subscribes to the deprecated /v1/events/tasks stream, which the Go client no
// longer exposes, with the same SSE and event parsing code as the client.
func (c *connection) subscribeTasksR0() (events.EventSource, error) {
	body, err := (&models.EventsByCellId{}).Marshal()
	if err != nil {
		return nil, err
	}
	cfg := sse.Config{
		Client:      c.rawStreaming,
		RetryParams: sse.RetryParams{RetryInterval: time.Second, MaxRetries: 3},
		RequestCreator: func() *http.Request {
			req, err := c.reqGen.CreateRequest(bbs.TaskEventStreamRoute_r0, nil, bytes.NewReader(body))
			if err != nil {
				panic(err)
			}
			return req
		},
	}
	src, err := cfg.Connect()
	if err != nil {
		return nil, err
	}
	return events.NewEventSource(src), nil
}

// expectedEvent is one event the events scenario waits for, after doing action.
type expectedEvent struct {
	name   string
	action func() error
	typ    string
	before models.Task_State // TaskChangedEvent only
	after  models.Task_State // state of the created/removed task, or of After
}

func runEvents(s *session) {
	cfg, c, l := s.cfg, s.client, s.logger
	guid := s.guid("events")
	def := richDefinition(cfg)

	var r1, r0 *eventStream
	var r1Events, r0Events []models.Event

	subscribe := []step{
		{"subscribe-tasks-r1", func() (string, error) {
			src, err := c.SubscribeToTaskEvents(l)
			if err != nil {
				return "", fmt.Errorf("SubscribeToTaskEvents: %v", err)
			}
			r1 = newEventStream(src)
			return "POST /v1/events/tasks.r1 connected", nil
		}},
		{"subscribe-tasks-r0", func() (string, error) {
			src, err := s.conn.subscribeTasksR0()
			if err != nil {
				return "", fmt.Errorf("deprecated /v1/events/tasks: %v", err)
			}
			r0 = newEventStream(src)
			return "POST /v1/events/tasks connected", nil
		}},
	}
	s.runSteps(subscribe)
	if r1 == nil {
		return
	}
	defer func() {
		_ = r1.src.Close()
		if r0 != nil {
			_ = r0.src.Close()
		}
	}()

	table := []expectedEvent{
		{"desire", func() error { return c.DesireTask(l, "", guid, cfg.Domain, def) }, models.EventTypeTaskCreated, 0, models.Task_Pending},
		{"start", func() error { _, err := c.StartTask(l, "", guid, cfg.Cell); return err }, models.EventTypeTaskChanged, models.Task_Pending, models.Task_Running},
		{"cancel", func() error { return c.CancelTask(l, "", guid) }, models.EventTypeTaskChanged, models.Task_Running, models.Task_Completed},
		{"resolving", func() error { return c.ResolvingTask(l, "", guid) }, models.EventTypeTaskChanged, models.Task_Completed, models.Task_Resolving},
		{"delete", func() error { return c.DeleteTask(l, "", guid) }, models.EventTypeTaskRemoved, 0, models.Task_Resolving},
	}
	var steps []step
	for _, ee := range table {
		ee := ee
		steps = append(steps, step{"event-" + ee.name + "-" + ee.typ, func() (string, error) {
			if err := ee.action(); err != nil {
				return "", fmt.Errorf("%s failed: %s", ee.name, describeErr(err))
			}
			ev, err := r1.next(guid, cfg.EventTimeout)
			if err != nil {
				return "", err
			}
			r1Events = append(r1Events, ev)
			if r0 != nil {
				if ev0, err := r0.next(guid, cfg.EventTimeout); err == nil {
					r0Events = append(r0Events, ev0)
				} else {
					r0Events = append(r0Events, nil)
				}
			}
			return describeEvent(ev), checkEvent(ev, ee, guid, def)
		}})
	}
	steps = append(steps, step{"deprecated-stream-downgraded", func() (string, error) {
		if r0 == nil {
			return "", fmt.Errorf("not subscribed")
		}
		for i, ev := range r1Events {
			if i >= len(r0Events) || r0Events[i] == nil {
				return "", fmt.Errorf("event %d (%s) missing on /v1/events/tasks", i, ev.EventType())
			}
			want := models.VersionTaskDefinitionsTo(ev, format.V2)
			eq, ok := r0Events[i].(interface{ Equal(interface{}) bool })
			if !ok || !eq.Equal(want) {
				return "", fmt.Errorf("event %d on /v1/events/tasks is not the V2 downgrade of the tasks.r1 event: got %s", i, describeEvent(r0Events[i]))
			}
		}
		return fmt.Sprintf("%d events, each the V2 downgrade of its tasks.r1 counterpart", len(r1Events)), nil
	}})
	s.runSteps(steps)
}

func describeEvent(ev models.Event) string {
	switch e := ev.(type) {
	case *models.TaskCreatedEvent:
		return "task_created " + summary(e.Task)
	case *models.TaskChangedEvent:
		return fmt.Sprintf("task_changed %s -> %s", e.Before.GetState(), summary(e.After))
	case *models.TaskRemovedEvent:
		return "task_removed " + summary(e.Task)
	case nil:
		return "nil"
	default:
		return fmt.Sprintf("%s %T", ev.EventType(), ev)
	}
}

func checkEvent(ev models.Event, ee expectedEvent, guid string, def *models.TaskDefinition) error {
	if ev.EventType() != ee.typ {
		return fmt.Errorf("got %s, want %s", describeEvent(ev), ee.typ)
	}
	taskOK := func(role string, t *models.Task, state models.Task_State) error {
		if t == nil {
			return fmt.Errorf("%s task missing", role)
		}
		checks := []fieldCheck{
			eq(role+".task_guid", t.TaskGuid, guid),
			eq(role+".state", t.State.String(), state.String()),
			{name: role + ".task_definition", ok: def.Equal(t.TaskDefinition), got: "differs", want: "the desired definition"},
		}
		return collect(checks...)
	}
	switch e := ev.(type) {
	case *models.TaskCreatedEvent:
		return taskOK("task", e.Task, ee.after)
	case *models.TaskChangedEvent:
		if err := taskOK("before", e.Before, ee.before); err != nil {
			return err
		}
		return taskOK("after", e.After, ee.after)
	case *models.TaskRemovedEvent:
		return taskOK("task", e.Task, ee.after)
	}
	return fmt.Errorf("unexpected event type %T", ev)
}
