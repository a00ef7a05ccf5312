package rivet_test

// The reference model of TestModel and the operations it runs: what every
// operation must return and what every connection must receive, computed
// from plain maps and slices.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rivetgo/rivet/internal/pgtest"
)

// Limits the model actor is defined with (modelDef).
const (
	modelMaxQueue     = 8
	modelMaxSchedules = 6
	modelActors       = 3
	// modelMaxOps bounds a sequence: alarms' due times carry the op
	// number in their milliseconds so that no two are equal.
	modelMaxOps = 999
)

// modelOp is one step of a sequence. Which fields matter depends on Kind.
type modelOp struct {
	Kind    string
	Actor   int
	N       int      // amount, milliseconds, count
	S       string   // tag, key, name, event
	Keys    []string // kvPut, kvDel
	Prefix  string   // kvList
	Start   string
	End     string
	Reverse bool
	Limit   int
	Ref     int   // which connection or alarm (modulo how many exist)
	Ns      []int // qsend
}

func (o modelOp) String() string {
	switch o.Kind {
	case "add", "sleep", "qlen", "pending", "kvDelAll", "destroy", "qtake", "qtakeFail":
		return fmt.Sprintf("%s actor=%d n=%d", o.Kind, o.Actor, o.N)
	case "fail", "bcast", "kvGet":
		return fmt.Sprintf("%s actor=%d n=%d s=%q", o.Kind, o.Actor, o.N, o.S)
	case "kvTx":
		return fmt.Sprintf("kvTx actor=%d %q", o.Actor, o.Keys)
	case "kvPut", "kvDel":
		return fmt.Sprintf("%s actor=%d keys=%v v=%d", o.Kind, o.Actor, o.Keys, o.N)
	case "kvList":
		return fmt.Sprintf("kvList actor=%d prefix=%q start=%q end=%q reverse=%v limit=%d", o.Actor, o.Prefix, o.Start, o.End, o.Reverse, o.Limit)
	case "sched", "schedAt":
		return fmt.Sprintf("%s actor=%d in=%dms tag=%s", o.Kind, o.Actor, o.N, o.S)
	case "cancel":
		return fmt.Sprintf("cancel actor=%d alarm#%d", o.Actor, o.Ref)
	case "qsend":
		return fmt.Sprintf("qsend actor=%d %v", o.Actor, o.Ns)
	case "connect":
		return fmt.Sprintf("connect actor=%d name=%s", o.Actor, o.S)
	case "close", "sub", "unsub", "bump":
		return fmt.Sprintf("%s conn#%d", o.Kind, o.Ref)
	case "advance", "restart":
		return fmt.Sprintf("%s %dms", o.Kind, o.N)
	}
	return o.Kind
}

var modelKinds = []struct {
	kind   string
	weight int
}{
	{"add", 6}, {"fail", 3}, {"bcast", 5},
	{"kvPut", 8}, {"kvTx", 4}, {"kvGet", 6}, {"kvDel", 4}, {"kvDelAll", 1}, {"kvList", 6},
	{"sched", 5}, {"schedAt", 2}, {"cancel", 3}, {"pending", 2},
	{"qsend", 4}, {"qtake", 4}, {"qtakeFail", 1}, {"qlen", 1},
	{"connect", 3}, {"close", 2}, {"sub", 1}, {"unsub", 1}, {"bump", 3},
	{"sleep", 2}, {"advance", 5}, {"advanceNext", 2}, {"destroy", 1}, {"restart", 1}, {"check", 2},
}

// genModelOps draws n operations from seed. The list depends on the seed
// only, never on results, so that any sublist of it is a valid sequence
// too (for shrinking).
func genModelOps(seed uint64, n int) []modelOp {
	n = min(n, modelMaxOps)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	total := 0
	for _, k := range modelKinds {
		total += k.weight
	}
	key := func() string {
		name := []string{"a", "b"}[rng.IntN(2)]
		if rng.IntN(4) == 0 {
			return name
		}
		return fmt.Sprintf("%s:%d", name, []int{-1, 0, 1, 2, 10}[rng.IntN(5)])
	}
	keys := func(max int) []string {
		out := make([]string, 1+rng.IntN(max))
		for i := range out {
			out[i] = key()
		}
		return out
	}
	delays := []int{1000, 30_000, 61_000, 300_000, 3_600_000}
	ops := make([]modelOp, n)
	for i := range ops {
		r := rng.IntN(total)
		kind := ""
		for _, k := range modelKinds {
			if r < k.weight {
				kind = k.kind
				break
			}
			r -= k.weight
		}
		op := modelOp{Kind: kind, Actor: rng.IntN(modelActors)}
		switch kind {
		case "add":
			op.N = rng.IntN(21) - 10
		case "fail":
			op.N, op.S = 1+rng.IntN(5), key()
		case "bcast":
			op.S = fmt.Sprint("b", i)
		case "kvPut":
			op.Keys, op.N = keys(3), rng.IntN(100)
		case "kvGet":
			op.S = key()
		case "kvTx":
			op.Keys = make([]string, 1+rng.IntN(5))
			for j := range op.Keys {
				switch r := rng.IntN(10); {
				case r < 4:
					op.Keys[j] = fmt.Sprintf("p %s %d", key(), rng.IntN(100))
				case r < 6:
					op.Keys[j] = "d " + key()
				case r < 7:
					op.Keys[j] = "D"
				case r < 9:
					op.Keys[j] = "g " + key()
				default:
					op.Keys[j] = "l"
				}
			}
		case "kvDel":
			op.Keys = keys(2)
		case "kvList":
			switch rng.IntN(3) {
			case 0:
				if rng.IntN(2) == 0 {
					op.Prefix = []string{"a", "b"}[rng.IntN(2)]
				} else {
					op.Prefix = key()
				}
			case 1:
				if rng.IntN(3) > 0 {
					op.Start = key()
				}
				if rng.IntN(3) > 0 {
					op.End = key()
				}
			}
			op.Reverse = rng.IntN(2) == 0
			if rng.IntN(2) == 0 {
				op.Limit = 1 + rng.IntN(3)
			}
		case "sched", "schedAt":
			op.N = delays[rng.IntN(len(delays))] + i%1000
			op.S = fmt.Sprint("t", i)
		case "cancel", "close", "sub", "unsub", "bump":
			op.Ref = rng.IntN(16)
		case "qsend":
			op.Ns = make([]int, 1+rng.IntN(3))
			for j := range op.Ns {
				op.Ns[j] = i*10 + j
			}
		case "qtake", "qtakeFail":
			op.N = 1 + rng.IntN(3)
		case "connect":
			op.S = fmt.Sprint("c", i)
		case "advance":
			op.N = []int{0, 1000, 30_000, 61_000, 300_000, 3_600_000}[rng.IntN(6)]
		case "restart":
			op.N = []int{0, 0, 120_000, 3_600_000}[rng.IntN(4)]
		}
		ops[i] = op
	}
	return ops
}

// The model's world.

type refAlarm struct {
	id   string // the id the runtime gave it
	tag  string
	at   time.Time
	seq  int
	live bool
}

type refActor struct {
	n      int
	fired  []string
	kv     map[string]int
	alarms []*refAlarm // every alarm of this life of the actor, live or not
	queue  []int
}

type refConn struct {
	actor      int
	name       string
	count      int
	subscribed bool
	want       []string
}

type modelWorld struct {
	now      time.Time
	actors   [modelActors]*refActor
	conns    map[int]*refConn
	nextConn int
	seq      int
}

func newModelWorld(now time.Time) *modelWorld {
	w := &modelWorld{now: now, conns: map[int]*refConn{}}
	for i := range w.actors {
		w.actors[i] = &refActor{kv: map[string]int{}}
	}
	return w
}

func liveAlarms(a *refActor) []*refAlarm {
	var out []*refAlarm
	for _, al := range a.alarms {
		if al.live {
			out = append(out, al)
		}
	}
	slices.SortFunc(out, func(x, y *refAlarm) int {
		return cmp.Or(x.at.Compare(y.at), cmp.Compare(x.seq, y.seq))
	})
	return out
}

// emit delivers an event to the subscribed connections of actor.
func (w *modelWorld) emit(actor int, ev string) {
	for _, c := range w.conns {
		if c.actor == actor && c.subscribed {
			c.want = append(c.want, ev)
		}
	}
}

// advance moves time to t, firing every due alarm in time order.
func (w *modelWorld) advance(t time.Time) {
	for i, a := range w.actors {
		for _, al := range liveAlarms(a) {
			if al.at.After(t) {
				break
			}
			al.live = false
			a.fired = append(a.fired, al.tag)
			w.emit(i, "f:"+al.tag)
		}
	}
	w.now = t
}

// openConns are the model's open connections by number.
func (w *modelWorld) openConns() []int {
	var out []int
	for n := range w.conns {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (w *modelWorld) conn(ref int) (int, *refConn) {
	open := w.openConns()
	if len(open) == 0 {
		return -1, nil
	}
	n := open[ref%len(open)]
	return n, w.conns[n]
}

// refKey orders model keys the way KV tuples sort: by name, a tuple
// before its extensions, integers numerically.
type refKey struct {
	name   string
	hasInt bool
	i      int
}

func parseRefKey(s string) refKey {
	name, n, ok := strings.Cut(s, ":")
	if !ok {
		return refKey{name: s}
	}
	i, _ := strconv.Atoi(n)
	return refKey{name: name, hasInt: true, i: i}
}

func compareRefKeys(a, b refKey) int {
	if c := strings.Compare(a.name, b.name); c != 0 {
		return c
	}
	if a.hasInt != b.hasInt {
		if !a.hasInt {
			return -1
		}
		return 1
	}
	return cmp.Compare(a.i, b.i)
}

func (a *refActor) list(op modelOp) []string {
	var ks []string
	for k := range a.kv {
		rk := parseRefKey(k)
		if op.Prefix != "" {
			p := parseRefKey(op.Prefix)
			if rk.name != p.name || (p.hasInt && (!rk.hasInt || rk.i != p.i)) {
				continue
			}
		}
		if op.Start != "" && compareRefKeys(rk, parseRefKey(op.Start)) < 0 {
			continue
		}
		if op.End != "" && compareRefKeys(rk, parseRefKey(op.End)) >= 0 {
			continue
		}
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(x, y string) int { return compareRefKeys(parseRefKey(x), parseRefKey(y)) })
	if op.Reverse {
		slices.Reverse(ks)
	}
	if op.Limit > 0 && len(ks) > op.Limit {
		ks = ks[:op.Limit]
	}
	out := []string{}
	for _, k := range ks {
		out = append(out, fmt.Sprintf("%s=%d", k, a.kv[k]))
	}
	return out
}

// stepModel runs op on the runtime and on the model and compares.
func stepModel(s *modelSUT, w *modelWorld, i int, op modelOp) error {
	a := w.actors[op.Actor]
	expect := func(got string, want any) error {
		if ws := modelJSON(want); got != ws {
			return fmt.Errorf("got %s, model says %s", got, ws)
		}
		return nil
	}
	expectErr := func(got, code string) error {
		if got != "error "+code {
			return fmt.Errorf("got %s, model says error %s", got, code)
		}
		return nil
	}
	switch op.Kind {
	case "add":
		a.n += op.N
		return expect(s.call(op.Actor, "add", op.N), a.n)
	case "fail":
		// The action puts, schedules and sends before it fails; a
		// limit can fail it first.
		code := "user.model_fail"
		if len(liveAlarms(a)) >= modelMaxSchedules {
			code = "schedule.too_many"
		} else if len(a.queue)+1 > modelMaxQueue {
			code = "queue.full"
		}
		return expectErr(s.call(op.Actor, "fail", op.N, op.S), code)
	case "bcast":
		w.emit(op.Actor, op.S)
		return expect(s.call(op.Actor, "bcast", op.S), nil)
	case "kvPut":
		for _, k := range op.Keys {
			a.kv[k] = op.N
		}
		return expect(s.call(op.Actor, "kvPut", op.Keys, op.N), nil)
	case "kvGet":
		var want any
		if v, ok := a.kv[op.S]; ok {
			want = v
		}
		return expect(s.call(op.Actor, "kvGet", op.S), want)
	case "kvDel":
		for _, k := range op.Keys {
			delete(a.kv, k)
		}
		return expect(s.call(op.Actor, "kvDel", op.Keys), nil)
	case "kvDelAll":
		clear(a.kv)
		return expect(s.call(op.Actor, "kvDelAll"), nil)
	case "kvList":
		return expect(s.call(op.Actor, "kvList", op.Prefix, op.Start, op.End, op.Reverse, op.Limit), a.list(op))
	case "sched", "schedAt":
		at := w.now.Add(time.Duration(op.N) * time.Millisecond)
		var got string
		if op.Kind == "sched" {
			got = s.call(op.Actor, "sched", op.N, op.S)
		} else {
			got = s.call(op.Actor, "schedAt", at.UnixMilli(), op.S)
		}
		if len(liveAlarms(a)) >= modelMaxSchedules {
			return expectErr(got, "schedule.too_many")
		}
		var id string
		if err := json.Unmarshal([]byte(got), &id); err != nil || id == "" {
			return fmt.Errorf("got %s, model says an alarm id", got)
		}
		w.seq++
		a.alarms = append(a.alarms, &refAlarm{id: id, tag: op.S, at: at, seq: w.seq, live: true})
		return nil
	case "cancel":
		id, want := "no-such-alarm", false
		if len(a.alarms) > 0 {
			al := a.alarms[op.Ref%len(a.alarms)]
			id, want = al.id, al.live
			al.live = false
		}
		return expect(s.call(op.Actor, "cancel", id), want)
	case "pending":
		return expect(s.call(op.Actor, "pending"), a.pending())
	case "qsend":
		if len(a.queue)+len(op.Ns) > modelMaxQueue {
			return expectErr(s.call(op.Actor, "qsend", op.Ns), "queue.full")
		}
		a.queue = append(a.queue, op.Ns...)
		return expect(s.call(op.Actor, "qsend", op.Ns), nil)
	case "qtake":
		k := min(op.N, len(a.queue))
		want := append([]int{}, a.queue[:k]...)
		a.queue = a.queue[k:]
		return expect(s.call(op.Actor, "qtake", op.N), want)
	case "qtakeFail":
		return expectErr(s.call(op.Actor, "qtakeFail", op.N), "user.model_fail")
	case "kvTx":
		out := []string{}
		for _, st := range op.Keys {
			f := strings.Fields(st)
			switch f[0] {
			case "p":
				a.kv[f[1]], _ = strconv.Atoi(f[2])
			case "d":
				delete(a.kv, f[1])
			case "D":
				clear(a.kv)
			case "g":
				if v, ok := a.kv[f[1]]; ok {
					out = append(out, fmt.Sprint(v))
				} else {
					out = append(out, "-")
				}
			case "l":
				var ks []string
				for _, e := range a.list(modelOp{}) {
					k, _, _ := strings.Cut(e, "=")
					ks = append(ks, k)
				}
				out = append(out, strings.Join(ks, ","))
			}
		}
		return expect(s.call(op.Actor, "kvTx", op.Keys), out)
	case "qlen":
		return expect(s.call(op.Actor, "qlen"), len(a.queue))
	case "connect":
		num := w.nextConn
		w.nextConn++
		if err := s.connect(op.Actor, num, op.S); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		w.conns[num] = &refConn{actor: op.Actor, name: op.S, subscribed: true}
		return nil
	case "close":
		num, c := w.conn(op.Ref)
		if c == nil {
			return nil
		}
		if err := checkConn(s, num, c); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.conns[num].c.Close(ctx); err != nil {
			return fmt.Errorf("close: %w", err)
		}
		delete(w.conns, num)
		delete(s.conns, num)
		return nil
	case "sub":
		num, c := w.conn(op.Ref)
		if c == nil || c.subscribed {
			return nil
		}
		c.subscribed = true
		s.subscribe(s.conns[num])
		return nil
	case "unsub":
		num, c := w.conn(op.Ref)
		if c == nil || !c.subscribed {
			return nil
		}
		// What was sent before must arrive before the handler goes.
		if err := checkConn(s, num, c); err != nil {
			return err
		}
		c.subscribed = false
		s.conns[num].unsub()
		return nil
	case "bump":
		num, c := w.conn(op.Ref)
		if c == nil {
			return nil
		}
		c.count++
		if c.subscribed {
			c.want = append(c.want, fmt.Sprintf("bump:%d", c.count))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return expect(modelResult(s.conns[num].c.Call(ctx, "bump")), fmt.Sprintf("%s:%d", c.name, c.count))
	case "sleep":
		return expect(s.call(op.Actor, "sleep"), nil)
	case "advance":
		w.advance(w.now.Add(time.Duration(op.N) * time.Millisecond))
		s.advance(time.Duration(op.N) * time.Millisecond)
		return nil
	case "advanceNext":
		// To the very millisecond the next alarm is due.
		next := time.Time{}
		for _, a := range w.actors {
			if l := liveAlarms(a); len(l) > 0 && (next.IsZero() || l[0].at.Before(next)) {
				next = l[0].at
			}
		}
		if next.IsZero() {
			return nil
		}
		d := next.Sub(w.now)
		w.advance(next)
		s.advance(d)
		return nil
	case "destroy":
		for _, num := range w.openConns() {
			if c := w.conns[num]; c.actor == op.Actor {
				if err := checkConn(s, num, c); err != nil {
					return err
				}
				delete(w.conns, num)
			}
		}
		w.actors[op.Actor] = &refActor{kv: map[string]int{}}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.handle(op.Actor).Destroy(ctx); err != nil {
			return fmt.Errorf("destroy: %w", err)
		}
		// Its connections close.
		for num, mc := range s.conns {
			if _, open := w.conns[num]; !open {
				if err := s.waitClosed(mc); err != nil {
					return fmt.Errorf("connection #%d of the destroyed actor: %w", num, err)
				}
				delete(s.conns, num)
			}
		}
		return nil
	case "restart":
		if err := checkConns(s, w); err != nil {
			return err
		}
		// The stop closes every connection.
		clear(w.conns)
		conns := s.conns
		if err := s.stop(); err != nil {
			return fmt.Errorf("stop: %w", err)
		}
		for num, mc := range conns {
			if err := s.waitClosed(mc); err != nil {
				return fmt.Errorf("connection #%d at the runtime's stop: %w", num, err)
			}
		}
		w.advance(w.now.Add(time.Duration(op.N) * time.Millisecond))
		if err := s.start(w.now); err != nil {
			return err
		}
		s.advance(0) // overdue alarms fire
		return nil
	case "check":
		return checkModel(s, w)
	}
	return fmt.Errorf("unknown op %q", op.Kind)
}

func (a *refActor) pending() []string {
	out := []string{}
	for _, al := range liveAlarms(a) {
		out = append(out, fmt.Sprintf("%s@%d", al.tag, al.at.UnixMilli()))
	}
	return out
}

// checkConn waits for the events the model says conn num must have
// received and compares them.
func checkConn(s *modelSUT, num int, c *refConn) error {
	got := s.waitEvents(s.conns[num], len(c.want))
	if !slices.Equal(got, c.want) {
		return fmt.Errorf("connection #%d (actor %d) received %q, model says %q", num, c.actor, got, c.want)
	}
	return nil
}

func checkConns(s *modelSUT, w *modelWorld) error {
	for _, num := range w.openConns() {
		if err := checkConn(s, num, w.conns[num]); err != nil {
			return err
		}
	}
	return nil
}

// checkModel compares everything observable of every actor.
func checkModel(s *modelSUT, w *modelWorld) error {
	for i, a := range w.actors {
		want := map[string]any{"n": a.n, "fired": a.fired}
		if got, ws := s.call(i, "state"), modelJSON(want); got != ws {
			return fmt.Errorf("actor %d state %s, model says %s", i, got, ws)
		}
		if got, ws := s.call(i, "kvList", "", "", "", false, 0), modelJSON(a.list(modelOp{})); got != ws {
			return fmt.Errorf("actor %d KV %s, model says %s", i, got, ws)
		}
		if got, ws := s.call(i, "pending"), modelJSON(a.pending()); got != ws {
			return fmt.Errorf("actor %d alarms %s, model says %s", i, got, ws)
		}
		if got, ws := s.call(i, "qlen"), modelJSON(len(a.queue)); got != ws {
			return fmt.Errorf("actor %d queue length %s, model says %s", i, got, ws)
		}
	}
	return checkConns(s, w)
}

// jsonMarshal renders v as canonical JSON: through a generic value, so
// that maps and structs compare alike.
func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		return nil, err
	}
	return json.Marshal(x)
}

// PostgreSQL for TestModel: a schema of its own per sequence.

func pgTestSchema(t *testing.T) (url, schema string) {
	t.Helper()
	return pgtest.URL(t), pgtest.SchemaName("rivet_model_")
}
