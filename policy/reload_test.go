package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitReload waits for a reload event matching ok.
func waitReload(t *testing.T, events <-chan ReloadEvent, what string, ok func(ReloadEvent) bool) ReloadEvent {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-events:
			if ok(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("timed out waiting for reload event: %s", what)
			return ReloadEvent{}
		}
	}
}

func TestWatch_RefusesBadRevisionsAndKeepsServing(t *testing.T) {
	dir := copyShipped(t)
	admission := filepath.Join(dir, "admission.rego")
	good, err := os.ReadFile(admission)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan ReloadEvent, 64)
	e := newEngine(t, Options{Dir: dir, WatchDebounce: 30 * time.Millisecond, OnReload: func(ev ReloadEvent) { events <- ev }})
	rev0 := e.Revision()

	ctx, cancel := context.WithCancel(context.Background())
	watchDone := make(chan error, 1)
	go func() { watchDone <- e.Watch(ctx) }()
	defer func() {
		cancel()
		if err := <-watchDone; err != nil {
			t.Errorf("Watch: %v", err)
		}
	}()
	// An unrelated file changes nothing but proves the watch is live.
	deadline := time.Now().Add(20 * time.Second)
	for live := false; !live; {
		writeFiles(t, dir, map[string]string{"NOTES.md": time.Now().String()})
		select {
		case ev := <-events:
			if !ev.OK || ev.Changed || ev.Trigger != "watch" {
				t.Fatalf("unrelated file: event %+v, want ok and unchanged", ev)
			}
			live = true
		case <-time.After(200 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("watch never reported a reload")
			}
		}
	}

	bad := []struct {
		name, text, want string
	}{
		{name: "syntax error", text: "\nbroken := {\"a\" 1}\n", want: "rego_parse_error"},
		{name: "schema type error", text: "\ntypo if input.identty.sub == \"x\"\n", want: "undefined ref: input.identty.sub"},
		{name: "forbidden built-in", text: "\nleak if http.send({\"method\": \"GET\", \"url\": \"https://evil.test\"})\n", want: "built-in http.send is not allowed"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			if err := os.WriteFile(admission, append(append([]byte{}, good...), b.text...), 0o644); err != nil {
				t.Fatal(err)
			}
			ev := waitReload(t, events, b.name, func(ev ReloadEvent) bool { return !ev.OK && strings.Contains(ev.Error, b.want) })
			if !errors.Is(ev.Err, ErrInvalidPolicy) || !strings.Contains(ev.Error, b.want) || !strings.Contains(ev.Error, admission+":") {
				t.Errorf("event error = %q, want %s naming %s", ev.Error, b.want, admission)
			}
			if ev.Changed || ev.OldRevision != rev0 || ev.NewRevision == rev0 || ev.NewRevision == "" {
				t.Errorf("event = %+v", ev)
			}
			if e.Revision() != rev0 {
				t.Fatalf("serving %s after a refused reload, want %s", e.Revision(), rev0)
			}
			if st := e.Status(); !strings.Contains(st.LastReloadError, b.want) || st.Revision != rev0 {
				t.Errorf("status = %+v", st)
			}
			if d := e.Decide(context.Background(), staffInput()); !d.Allow || d.Revision != rev0 {
				t.Errorf("decision while refusing: %+v", d)
			}
		})
	}

	// A good edit is served: restore the rules, move staff to another domain.
	if err := os.WriteFile(admission, good, 0o644); err != nil {
		t.Fatal(err)
	}
	replaceIn(t, filepath.Join(dir, "data.json"), `"staff_domains": ["example.com"]`, `"staff_domains": ["example.org"]`)
	ev := waitReload(t, events, "good revision", func(ev ReloadEvent) bool { return ev.OK && ev.Changed })
	if ev.OldRevision != rev0 || e.Revision() != ev.NewRevision || ev.NewRevision == rev0 {
		t.Fatalf("event %+v, serving %s", ev, e.Revision())
	}
	if st := e.Status(); st.LastReloadError != "" {
		t.Errorf("last reload error still shown after a good reload: %q", st.LastReloadError)
	}
	if d := e.Decide(context.Background(), staffInput()); d.Allow || !d.Lobby || d.Revision != ev.NewRevision {
		t.Errorf("after reload example.com should be a guest: %+v", d)
	}
}

func TestReload_UnchangedSourceKeepsRevision(t *testing.T) {
	var events []ReloadEvent
	e := newEngine(t, Options{Dir: copyShipped(t), OnReload: func(ev ReloadEvent) { events = append(events, ev) }})
	rev := e.Revision()
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || !events[0].OK || events[0].Changed || events[0].Trigger != "reload" || e.Revision() != rev {
		t.Errorf("events %+v", events)
	}
}

func TestReload_MissingDirectoryKeepsServing(t *testing.T) {
	dir := copyShipped(t)
	e := newEngine(t, Options{Dir: dir})
	rev := e.Revision()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(context.Background()); !errors.Is(err, ErrPolicySource) {
		t.Fatalf("Reload = %v, want ErrPolicySource", err)
	}
	if e.Revision() != rev || !e.Decide(context.Background(), staffInput()).Allow {
		t.Error("a failed reload changed what is served")
	}
}

// Decisions racing reloads always come from one whole revision: the
// revision a decision names is the one whose rules made it.
func TestReload_SwapsWholeRevisionsUnderLoad(t *testing.T) {
	dir := copyShipped(t)
	data := filepath.Join(dir, "data.json")
	orig, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	// A generous deadline: this test is about whole revisions, and a slow
	// shared machine must not turn decisions into timeouts.
	e := newEngine(t, Options{Dir: dir, Timeout: 10 * time.Second})
	staffRev := e.Revision()
	replaceIn(t, data, `"staff_domains": ["example.com"]`, `"staff_domains": ["example.org"]`)
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	guestRev := e.Revision()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				d := e.Decide(context.Background(), staffInput())
				switch {
				case d.Revision == staffRev && d.Allow:
				case d.Revision == guestRev && d.Lobby:
				default:
					select {
					case errs <- d.Revision + " " + Summary(d):
					default:
					}
				}
			}
		})
	}
	for i := range 6 {
		content := orig
		if i%2 == 0 {
			content = []byte(strings.Replace(string(orig), `["example.com"]`, `["example.org"]`, 1))
		}
		if err := os.WriteFile(data, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := e.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Errorf("decision from a mixed revision: %s", msg)
	}
}
