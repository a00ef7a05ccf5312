package rivetfault_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rivetgo/rivet/internal/envoy"
	"github.com/rivetgo/rivet/rivetdriver/rivetfault"
)

// countKV is an engine KV that counts the requests reaching it.
type countKV struct{ got, put int }

func (k *countKV) KV(_ context.Context, _ string, req envoy.KVRequestData) (envoy.KVResponseData, error) {
	switch req.(type) {
	case envoy.KVGetRequest:
		k.got++
		return envoy.KVGetResponse{}, nil
	case envoy.KVPutRequest:
		k.put++
		return envoy.KVPutResponse{}, nil
	}
	return envoy.KVDeleteResponse{}, nil
}

// TestWrapEngineKV: rules reach the engine's KV requests by kind (gets
// OpKVGet, writes OpCommit); an error stops the request before the
// engine, a lost acknowledgement lets it through and fails it, a hang
// ends with its context, and torn batches and bit flips, which the engine
// KV cannot have, never fire.
func TestWrapEngineKV(t *testing.T) {
	ctx := context.Background()
	put := envoy.KVPutRequest{Keys: []envoy.KVKey{[]byte("k")}, Values: []envoy.KVValue{[]byte("v")}}
	get := envoy.KVGetRequest{Keys: []envoy.KVKey{[]byte("k")}}

	inner := &countKV{}
	fd := rivetfault.New(nil, 1)
	kv := fd.WrapEngineKV(inner)
	fd.Add(
		rivetfault.Rule{Kind: rivetfault.KindTorn},
		rivetfault.Rule{Kind: rivetfault.KindBitFlip},
		rivetfault.Rule{Ops: rivetfault.OpKVGet, Kind: rivetfault.KindError, Limit: 1},
		rivetfault.Rule{Ops: rivetfault.OpCommit, Actor: "a", Kind: rivetfault.KindLostAck, Limit: 1},
	)
	if _, err := kv.KV(ctx, "a", get); !errors.Is(err, rivetfault.ErrInjected) || inner.got != 0 {
		t.Fatalf("get under an error rule: %v, %d gets reached the engine; want ErrInjected and none", err, inner.got)
	}
	if _, err := kv.KV(ctx, "b", put); err != nil || inner.put != 1 {
		t.Fatalf("put of another actor: %v, %d puts; want it through", err, inner.put)
	}
	if _, err := kv.KV(ctx, "a", put); !errors.Is(err, rivetfault.ErrInjected) || inner.put != 2 {
		t.Fatalf("put under a lost-ack rule: %v, %d puts; want ErrInjected with the put applied", err, inner.put)
	}
	if _, err := kv.KV(ctx, "a", get); err != nil || inner.got != 1 {
		t.Fatalf("get after the rules' limits: %v, %d gets; want it through", err, inner.got)
	}
	if s := fd.Stats(); s.Faults[rivetfault.KindTorn]+s.Faults[rivetfault.KindBitFlip] != 0 || s.Total() != 2 {
		t.Fatalf("faults %v; want one error and one lost ack, no torn batch or bit flip", s.Faults)
	}

	fd.Clear()
	fd.Add(rivetfault.Rule{Ops: rivetfault.OpCommit, Kind: rivetfault.KindHang})
	hctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := kv.KV(hctx, "a", put); !errors.Is(err, context.DeadlineExceeded) || inner.put != 2 {
		t.Fatalf("hung put: %v, %d puts; want the context's error and no put", err, inner.put)
	}
}
