// Package callchain carries the chain of actor turns a call is made from,
// so that a call back into an actor of the chain (A calls B, B calls A; or
// A calls itself) fails at once instead of waiting for a turn that cannot
// start before the caller's own turn ends.
//
// A turn's context carries the chain of the turn that called it plus the
// actor itself (With); the engine refuses a job for an actor on its
// context's chain (Cycle). Over HTTP the chain travels as the actor ids in
// the Header request header, which rivetclient sets from its context and
// the gateway reads into the action's context: a cycle through another
// process is found as long as every hop forwards it. A caller can only
// shorten its own call with a forged header, so it is not authenticated.
package callchain

import (
	"context"
	"strings"

	"github.com/rivetgo/rivet/rivettype"
)

// Header carries the chain over HTTP: actor ids, outermost first,
// comma-separated.
const Header = "X-Rivet-Call-Chain"

// MaxLen bounds the chain kept from a header; longer chains keep their
// innermost entries.
const MaxLen = 64

// maxIDLen bounds one id read from a header.
const maxIDLen = 128

// ErrCycle is actor.call_cycle.
var ErrCycle = rivettype.ErrCallCycle

// link is one actor of a chain; label names it in errors.
type link struct {
	parent *link
	id     string
	label  string
	depth  int
}

type ctxKey struct{}

func from(ctx context.Context) *link {
	l, _ := ctx.Value(ctxKey{}).(*link)
	return l
}

// With returns ctx with the actor id (label names it, as "name[key]")
// appended to its chain.
func With(ctx context.Context, id, label string) context.Context {
	p := from(ctx)
	d := 1
	if p != nil {
		d = p.depth + 1
	}
	return context.WithValue(ctx, ctxKey{}, &link{parent: p, id: id, label: label, depth: d})
}

// IDs is the chain of ctx, outermost first.
func IDs(ctx context.Context) []string {
	var out []string
	for l := from(ctx); l != nil; l = l.parent {
		out = append(out, l.id)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Cycle returns actor.call_cycle naming the cycle if id is on the chain
// of ctx, nil otherwise.
func Cycle(ctx context.Context, id string) error {
	var hit *link
	for l := from(ctx); l != nil; l = l.parent {
		if l.id == id {
			hit = l
			break
		}
	}
	if hit == nil {
		return nil
	}
	var names []string
	for l := from(ctx); l != hit; l = l.parent {
		names = append(names, l.label)
	}
	names = append(names, hit.label)
	for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
		names[i], names[j] = names[j], names[i]
	}
	names = append(names, hit.label)
	cycle := strings.Join(names, " -> ")
	ids := IDs(ctx)
	e := ErrCycle.With("Call cycle %s: %s is in a turn waiting for this call, which could only run after that turn ends; "+
		"make the outer call with Await, which does not hold the actor.", cycle, hit.label)
	e.Metadata = map[string]any{"cycle": cycle, "chain": ids, "actorId": id}
	return e
}

// Encode is the Header value of the chain of ctx ("" for none).
func Encode(ctx context.Context) string { return strings.Join(IDs(ctx), ",") }

// Decode returns ctx with the chain of a Header value appended; entries
// that are empty or too long are skipped.
func Decode(ctx context.Context, v string) context.Context {
	if v == "" {
		return ctx
	}
	ids := strings.Split(v, ",")
	if len(ids) > MaxLen {
		ids = ids[len(ids)-MaxLen:]
	}
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" || len(id) > maxIDLen {
			continue
		}
		ctx = With(ctx, id, id)
	}
	return ctx
}
