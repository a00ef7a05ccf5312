package workflow_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/workflow"
	"github.com/rivetgo/rivet/internal/readmecurl"
	"github.com/rivetgo/rivet/rivettest"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func call[R any](t *testing.T, ctx context.Context, h *rivet.Handle, action string, args ...any) R {
	t.Helper()
	r, err := rivet.Call[R](ctx, h, action, args...)
	if err != nil {
		t.Fatalf("%s: %v", action, err)
	}
	return r
}

func texts(rs []workflow.Reminder) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Text)
	}
	return strings.Join(s, ",")
}

// TestRemindersFireOnTime: reminders fire at their time, in order, reach
// connected clients as events, and can be canceled.
func TestRemindersFireOnTime(t *testing.T) {
	ctx := testCtx(t)
	k := rivettest.New(t, rivet.MustRegistry(workflow.Definitions()...), rivettest.WithStart(t0))
	h := k.Client.GetOrCreate("reminders", rivet.Key{"ada"})
	conn, err := h.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	events := make(chan workflow.Reminder, 10)
	rivet.OnEvent(conn, "reminder", func(r workflow.Reminder) { events <- r })

	lunch := call[workflow.Reminder](t, ctx, h, "remind", "lunch", (2 * time.Hour).Milliseconds())
	standup := call[workflow.Reminder](t, ctx, h, "remind", "stand up", time.Hour.Milliseconds())
	dentist := call[workflow.Reminder](t, ctx, h, "remind", "dentist", (3 * time.Hour).Milliseconds())
	if standup.DueAt != t0.Add(time.Hour).UnixMilli() {
		t.Fatalf("dueAt %d, want %d", standup.DueAt, t0.Add(time.Hour).UnixMilli())
	}
	if !call[bool](t, ctx, h, "cancel", dentist.ID) {
		t.Fatal("cancel of a pending reminder returned false")
	}
	if call[bool](t, ctx, h, "cancel", dentist.ID) {
		t.Fatal("a second cancel returned true")
	}

	k.Advance(time.Hour - time.Millisecond)
	if got := texts(call[[]workflow.Reminder](t, ctx, h, "fired")); got != "" {
		t.Fatalf("fired before its time: %s", got)
	}
	k.Advance(time.Millisecond)
	select {
	case r := <-events:
		if r.ID != standup.ID || r.FiredAt != t0.Add(time.Hour).UnixMilli() {
			t.Fatalf("event %+v, want %s fired at %d", r, standup.ID, t0.Add(time.Hour).UnixMilli())
		}
	case <-ctx.Done():
		t.Fatal("no reminder event")
	}
	k.Advance(5 * time.Hour)
	fired := call[[]workflow.Reminder](t, ctx, h, "fired")
	if got := texts(fired); got != "stand up,lunch" {
		t.Fatalf("fired %q, want stand up,lunch (dentist was canceled)", got)
	}
	if fired[1].ID != lunch.ID || fired[1].FiredAt != lunch.DueAt {
		t.Fatalf("lunch fired as %+v, want id %s at %d", fired[1], lunch.ID, lunch.DueAt)
	}
	if got := call[[]workflow.Reminder](t, ctx, h, "pending"); len(got) != 0 {
		t.Fatalf("pending after all fired: %+v", got)
	}
}

func TestRemindValidation(t *testing.T) {
	ctx := testCtx(t)
	k := rivettest.New(t, rivet.MustRegistry(workflow.Definitions()...), rivettest.WithStart(t0))
	h := k.Client.GetOrCreate("reminders", rivet.Key{"ada"})
	for _, tc := range []struct {
		text string
		in   int64
	}{{"", 1000}, {"ok", -1}, {"ok", (400 * 24 * time.Hour).Milliseconds()}, {strings.Repeat("x", workflow.MaxTextBytes+1), 1}} {
		if _, err := h.Call(ctx, "remind", tc.text, tc.in); err == nil || !strings.Contains(err.Error(), "invalid_reminder") {
			t.Errorf("remind(%.10q, %d): %v, want user.invalid_reminder", tc.text, tc.in, err)
		}
	}
	// The alarm's action is not for clients.
	if _, err := h.Call(ctx, "fire", "r1"); err == nil || !strings.Contains(err.Error(), "schedule_only") {
		t.Errorf("fire from a client: %v, want user.schedule_only", err)
	}
}

// TestOnboardingSteps: each step runs after its delay, once, and the
// status tells what ran and what is next.
func TestOnboardingSteps(t *testing.T) {
	ctx := testCtx(t)
	k := rivettest.New(t, rivet.MustRegistry(workflow.Definitions()...), rivettest.WithStart(t0))
	h := k.Client.GetOrCreate("onboarding", rivet.Key{"ada"})
	st := call[workflow.Onboarding](t, ctx, h, "start", "ada@example.com")
	if st.Next == nil || st.Next.Step != "welcome" || len(st.Done) != 0 {
		t.Fatalf("after start: %+v", st)
	}
	// Starting again is harmless.
	call[workflow.Onboarding](t, ctx, h, "start", "other@example.com")
	k.Advance(0)
	st = call[workflow.Onboarding](t, ctx, h, "status")
	if len(st.Done) != 1 || st.Done[0].Message != "sent the welcome email to ada@example.com" {
		t.Fatalf("after welcome: %+v", st)
	}
	if st.Next == nil || st.Next.Step != "tips" || st.Next.At != t0.Add(24*time.Hour).UnixMilli() {
		t.Fatalf("next after welcome: %+v", st.Next)
	}
	k.Advance(72 * time.Hour)
	st = call[workflow.Onboarding](t, ctx, h, "status")
	var ran []string
	for _, d := range st.Done {
		ran = append(ran, d.Step)
	}
	if strings.Join(ran, ",") != "welcome,tips,checkIn" || !st.Finished || st.Next != nil {
		t.Fatalf("after 3 days: %+v", st)
	}
	if st.Done[2].RanAt != t0.Add(72*time.Hour).UnixMilli() {
		t.Fatalf("checkIn ran at %d, want %d", st.Done[2].RanAt, t0.Add(72*time.Hour).UnixMilli())
	}
	if _, err := h.Call(ctx, "runStep", 0); err == nil {
		t.Fatal("runStep from a client was accepted")
	}
}

// startOn starts a runtime on the embedded store in dir.
func startOn(t *testing.T, dir string, clk rivet.Clock) *rivet.Runtime {
	t.Helper()
	rt, err := rivet.Start(context.Background(), rivet.MustRegistry(workflow.Definitions()...),
		&rivet.Config{DataDir: dir, Clock: clk, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func stop(t *testing.T, rt *rivet.Runtime) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := rt.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// TestSchedulesSurviveRestart: reminders and workflow steps scheduled
// before a restart fire after it, on the same embedded store: the ones
// that fell due while the server was down at once, the others at their
// time.
func TestSchedulesSurviveRestart(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()

	rt := startOn(t, dir, rivettest.NewClock(t0))
	c := rt.Client()
	call[workflow.Reminder](t, ctx, c.GetOrCreate("reminders", rivet.Key{"ada"}), "remind", "while down", time.Hour.Milliseconds())
	call[workflow.Reminder](t, ctx, c.GetOrCreate("reminders", rivet.Key{"ada"}), "remind", "after restart", (5 * time.Hour).Milliseconds())
	call[workflow.Onboarding](t, ctx, c.GetOrCreate("onboarding", rivet.Key{"ada"}), "start", "ada@example.com")
	stop(t, rt)

	// Back two hours later: "while down" is overdue, "after restart"
	// is not, and the welcome step (due at t0) is overdue.
	clk := rivettest.NewClock(t0.Add(2 * time.Hour))
	rt = startOn(t, dir, clk)
	defer stop(t, rt)
	c = rt.Client()
	clk.Advance(0)
	h := c.Get("reminders", rivet.Key{"ada"})
	fired := call[[]workflow.Reminder](t, ctx, h, "fired")
	if texts(fired) != "while down" || fired[0].FiredAt != t0.Add(2*time.Hour).UnixMilli() {
		t.Fatalf("after restart: fired %+v, want \"while down\" at restart time", fired)
	}
	if got := texts(call[[]workflow.Reminder](t, ctx, h, "pending")); got != "after restart" {
		t.Fatalf("pending %q", got)
	}
	clk.Advance(3 * time.Hour)
	if got := texts(call[[]workflow.Reminder](t, ctx, h, "fired")); got != "while down,after restart" {
		t.Fatalf("fired %q", got)
	}
	st := call[workflow.Onboarding](t, ctx, c.Get("onboarding", rivet.Key{"ada"}), "status")
	if len(st.Done) != 1 || st.Done[0].Step != "welcome" || st.Next == nil || st.Next.Step != "tips" {
		t.Fatalf("onboarding after restart: %+v", st)
	}
}

// TestRestartWallClock is the same with the real clock: a reminder due
// while the server is stopped fires once it is back.
func TestRestartWallClock(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	rt := startOn(t, dir, nil)
	r := call[workflow.Reminder](t, ctx, rt.Client().GetOrCreate("reminders", rivet.Key{"bob"}), "remind", "tea", 300)
	stop(t, rt)
	// Down past the reminder's time.
	for time.Now().UnixMilli() <= r.DueAt {
		time.Sleep(time.Duration(r.DueAt-time.Now().UnixMilli()+1) * time.Millisecond)
	}
	rt = startOn(t, dir, nil)
	defer stop(t, rt)
	h := rt.Client().Get("reminders", rivet.Key{"bob"})
	for {
		fired := call[[]workflow.Reminder](t, ctx, h, "fired")
		if len(fired) == 1 && fired[0].Text == "tea" && fired[0].FiredAt >= r.DueAt {
			return
		}
		if len(fired) > 1 {
			t.Fatalf("fired more than once: %+v", fired)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the reminder did not fire after the restart: %+v", fired)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestReadmeCurl runs the curl commands of README.md and checks every
// answer shown, restarting the server on the same store where the README
// does, with the reminder falling due while it is down.
func TestReadmeCurl(t *testing.T) {
	const readme = "README.md"
	cmds := readmecurl.Parse(t, readme)
	if len(cmds) != 5 {
		t.Fatalf("%s has %d curl commands, want 5", readme, len(cmds))
	}
	dir := t.TempDir()
	rt := startOn(t, dir, rivettest.NewClock(t0))
	readmecurl.Exec(t, readme, cmds[:2], rt.Handler())
	stop(t, rt)

	clk := rivettest.NewClock(t0.Add(15 * time.Second))
	rt = startOn(t, dir, clk)
	defer stop(t, rt)
	clk.Advance(0)
	readmecurl.Exec(t, readme, cmds[2:4], rt.Handler())
	clk.Advance(0) // the welcome step, due at once, runs
	readmecurl.Exec(t, readme, cmds[4:], rt.Handler())
}
