package rivetfault

import (
	"context"
	"fmt"

	"github.com/rivetgo/rivet/internal/envoy"
	"github.com/rivetgo/rivet/rivetdriver/rivetengine"
)

// WrapEngineKV returns kv (the Rivet Engine's KV as runner mode reaches
// it) with d's rules applied to each engine KV request: a get matches
// OpKVGet, a list OpKVList, and a put, delete, delete-range or drop
// OpCommit. To inject faults under a runner's actors set d as
// rivet.EngineConfig.WrapKV, which calls this; d's own wrapped driver is
// not used (New(nil, seed)).
//
// On the engine's KV, KindError, KindCorrupt, KindSlow and KindHang act
// as on a driver; KindLostAck applies a write request and then reports
// ErrInjected (Fault.Applied stays empty: one request is part of a
// commit, not a commit). KindTorn and KindBitFlip never fire there: the
// engine applies each request in one transaction (a commit that spans
// several requests is torn by an error on one of them), and the runner's
// storage keeps no checksum of its values.
func (d *Driver) WrapEngineKV(kv rivetengine.KV) rivetengine.KV {
	return &engineKV{d: d, inner: kv}
}

type engineKV struct {
	d     *Driver
	inner rivetengine.KV
}

func (k *engineKV) KV(ctx context.Context, actorID string, req envoy.KVRequestData) (envoy.KVResponseData, error) {
	op := OpCommit
	switch req.(type) {
	case envoy.KVGetRequest:
		op = OpKVGet
	case envoy.KVListRequest:
		op = OpKVList
	}
	actors := []string{actorID}
	dc := k.d.drawEngine(op, actors)
	if err := k.d.before(ctx, dc, op, actors); err != nil {
		return nil, err
	}
	res, err := k.inner.KV(ctx, actorID, req)
	if err != nil || dc == nil || dc.kind != KindLostAck {
		return res, err
	}
	k.d.count(Fault{Op: op, Kind: KindLostAck, Actors: actors})
	return nil, fmt.Errorf("%s: engine KV request applied, then: %w", op, ErrInjected)
}
