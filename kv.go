package rivet

import (
	"github.com/rivetgo/rivet/internal/engine"
	"github.com/rivetgo/rivet/internal/keyenc"
	"github.com/rivetgo/rivet/rivetdriver"
)

// KVKey is a structured key of an actor's KV store: a tuple of strings,
// byte slices, integers, floats and bools. Keys sort element by element
// (integers numerically), and a tuple's prefix selects exactly the tuples
// that start with it: ("user", "a") never matches ("user", "ab"), so user
// input in a key element cannot reach other keys.
type KVKey []any

// K builds a KVKey.
func K(elems ...any) KVKey { return KVKey(elems) }

// KVEntry is a key and its value.
type KVEntry struct {
	Key   KVKey `json:"key"`
	Value Value `json:"value"`
}

// KVPair is a key and a value to put.
type KVPair struct {
	Key   KVKey `json:"key"`
	Value any   `json:"value"`
}

// KVListOptions selects keys: with Prefix, the keys that start with it;
// Start is inclusive, End exclusive. Reverse lists in descending order;
// Limit 0 means no limit.
type KVListOptions struct {
	Prefix  KVKey `json:"prefix,omitempty"`
	Start   KVKey `json:"start,omitempty"`
	End     KVKey `json:"end,omitempty"`
	Reverse bool  `json:"reverse,omitempty"`
	Limit   int   `json:"limit,omitempty"`
}

// KV is an actor's private, ordered key/value store. Its writes belong to
// the turn: committed with it, rolled back with it, and visible to its own
// reads at once. Values are any encodable Go value; []byte is stored as is.
type KV struct{ t *engine.Turn }

func encodeKey(k KVKey) ([]byte, error) {
	if len(k) == 0 {
		return nil, ErrKVKeyInvalid.With("KV key is empty")
	}
	b, err := keyenc.Encode(k...)
	if err != nil {
		return nil, ErrKVKeyInvalid.With("%v", err)
	}
	return b, nil
}

func encodeKeys(keys []KVKey) ([][]byte, error) {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		b, err := encodeKey(k)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// Get decodes the value of key into dst, reporting whether it exists.
func (kv *KV) Get(key KVKey, dst any) (bool, error) {
	vals, err := kv.GetBatch(key)
	if err != nil {
		return false, err
	}
	if !vals[0].Present() {
		return false, nil
	}
	return true, vals[0].Decode(dst)
}

// GetBatch returns the values of keys, in order; a missing key's Value is
// not Present.
func (kv *KV) GetBatch(keys ...KVKey) ([]Value, error) {
	ks, err := encodeKeys(keys)
	if err != nil {
		return nil, err
	}
	raw, err := kv.t.KVGet(ks)
	if err != nil {
		return nil, err
	}
	out := make([]Value, len(raw))
	for i, b := range raw {
		out[i] = Value{b}
	}
	return out, nil
}

// Put sets key to value.
func (kv *KV) Put(key KVKey, value any) error {
	return kv.PutBatch(KVPair{Key: key, Value: value})
}

// PutBatch sets several keys at once.
func (kv *KV) PutBatch(pairs ...KVPair) error {
	out := make([]rivetdriver.KV, len(pairs))
	for i, p := range pairs {
		k, err := encodeKey(p.Key)
		if err != nil {
			return err
		}
		v, err := encodeValue(p.Value)
		if err != nil {
			return err
		}
		out[i] = rivetdriver.KV{Key: k, Value: v}
	}
	return kv.t.KVPut(out)
}

// Delete removes key.
func (kv *KV) Delete(key KVKey) error { return kv.DeleteBatch(key) }

// DeleteBatch removes several keys.
func (kv *KV) DeleteBatch(keys ...KVKey) error {
	ks, err := encodeKeys(keys)
	if err != nil {
		return err
	}
	return kv.t.KVDelete(ks)
}

// DeleteAll removes every key of the actor.
func (kv *KV) DeleteAll() error {
	return kv.t.KVClearUser()
}

// List returns the entries opts selects, in key order.
func (kv *KV) List(opts KVListOptions) ([]KVEntry, error) {
	var lo rivetdriver.ListOptions
	var err error
	if len(opts.Prefix) > 0 {
		if lo.Prefix, err = encodeKey(opts.Prefix); err != nil {
			return nil, err
		}
	}
	if len(opts.Start) > 0 {
		if lo.Start, err = encodeKey(opts.Start); err != nil {
			return nil, err
		}
	}
	if len(opts.End) > 0 {
		if lo.End, err = encodeKey(opts.End); err != nil {
			return nil, err
		}
	}
	if lo.End == nil {
		// Stop before the engine's own rows (the queue).
		lo.End = engine.InternalKeyPrefix
	}
	lo.Reverse, lo.Limit = opts.Reverse, opts.Limit
	raw, err := kv.t.KVList(lo)
	if err != nil {
		return nil, err
	}
	out := make([]KVEntry, len(raw))
	for i, e := range raw {
		k, err := keyenc.Decode(e.Key)
		if err != nil {
			return nil, err
		}
		out[i] = KVEntry{Key: KVKey(k), Value: Value{e.Value}}
	}
	return out, nil
}
