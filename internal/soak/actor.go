// Package soak is the crash soak: mixed load (actions, connections with
// events, alarms, queue sends and receives) against a server process that
// is killed with SIGKILL and restarted many times, on the embedded store,
// PostgreSQL, or as a runner of the Rivet Engine; then an audit of what
// survived (docs/RELIABILITY.md, "Crash soak").
package soak

import (
	"time"

	"github.com/rivetgo/rivet"
)

// ActorName is the soak actor's name.
const ActorName = "soak"

// Record kinds: the KV prefix under which the actor counts how many times
// each effect was applied.
const (
	KindApply = "a" // an action (stateless or through a connection)
	KindFire  = "f" // an alarm firing
	KindTake  = "q" // a queue message received
)

// Rec is one effect's record: its id and how many times it was applied.
type Rec struct {
	ID int `json:"id"`
	N  int `json:"n"`
}

var jobs = rivet.Queue[int]("jobs")

type none struct{}

// bump counts one more application of effect id of kind, in the turn
// that applies it (one commit with the effect itself).
func bump(c *rivet.Ctx[none], kind string, id int) (int, error) {
	var r Rec
	if _, err := c.KV().Get(rivet.K(kind, id), &r); err != nil {
		return 0, err
	}
	r.ID, r.N = id, r.N+1
	return r.N, c.KV().Put(rivet.K(kind, id), r)
}

// Def is the soak actor. Every effect carries a unique id and is counted
// in KV in the turn that applies it, so an audit can tell lost effects
// (count 0 for an acknowledged id) from doubled ones (count 2 or more).
// The short sleep timeout makes actors fall asleep and wake (by call or
// alarm) between kills.
var Def = rivet.NewActor(ActorName, rivet.Opts[none]{MaxQueueSize: 1 << 20, SleepTimeout: 1500 * time.Millisecond}).
	Queues(jobs).
	Action("ping", func(c *rivet.Ctx[none]) int { return 1 }).
	// apply applies effect id and tells subscribed connections.
	Action("apply", func(c *rivet.Ctx[none], id int) (int, error) {
		n, err := bump(c, KindApply, id)
		if err == nil {
			c.Broadcast("applied", id)
		}
		return n, err
	}).
	// arm schedules alarm id to fire after ms milliseconds.
	Action("arm", func(c *rivet.Ctx[none], id, ms int) error {
		_, err := c.Schedule().After(time.Duration(ms)*time.Millisecond, "fire", id)
		return err
	}).
	Action("fire", func(c *rivet.Ctx[none], id int) error {
		_, err := bump(c, KindFire, id)
		return err
	}).
	// take receives the next queued message, if any (-1 when none), and
	// records it in the same turn.
	Action("take", func(c *rivet.Ctx[none]) (int, error) {
		m, err := jobs.Next(c)
		if m == nil || err != nil {
			return -1, err
		}
		_, err = bump(c, KindTake, m.Body)
		return m.Body, err
	}).
	// records lists the records of kind with id >= from, at most limit.
	Action("records", func(c *rivet.Ctx[none], kind string, from, limit int) ([]Rec, error) {
		es, err := c.KV().List(rivet.KVListOptions{Start: rivet.K(kind, from), End: rivet.K(kind + "\x00"), Limit: limit})
		if err != nil {
			return nil, err
		}
		out := make([]Rec, 0, len(es))
		for _, e := range es {
			var r Rec
			if err := e.Value.Decode(&r); err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	})
