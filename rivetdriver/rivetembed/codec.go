package rivetembed

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/rivetgo/rivet/rivetdriver"
)

// Records and alarms are stored in a small binary encoding (not JSON, which
// would replace invalid UTF-8 in ids, names and keys). Strings and byte
// slices are uvarint-length-prefixed; byte slices and string lists whose nil
// and empty forms differ store length+1, 0 meaning nil; times use
// time.Time.MarshalBinary.

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }

func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) bytes(p []byte) {
	if p == nil {
		e.uvarint(0)
		return
	}
	e.uvarint(uint64(len(p)) + 1)
	e.b = append(e.b, p...)
}

func (e *encoder) strs(ss []string) {
	if ss == nil {
		e.uvarint(0)
		return
	}
	e.uvarint(uint64(len(ss)) + 1)
	for _, s := range ss {
		e.str(s)
	}
}

func (e *encoder) time(t time.Time) {
	b, err := t.MarshalBinary()
	if err != nil { // only for offsets that are not whole minutes
		b, _ = t.UTC().MarshalBinary()
	}
	e.uvarint(uint64(len(b)))
	e.b = append(e.b, b...)
}

var errShort = errors.New("truncated")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShort
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string { return string(d.take(d.uvarint())) }

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	return append([]byte{}, d.take(n-1)...)
}

func (d *decoder) strs() []string {
	n := d.uvarint()
	if n == 0 || d.err != nil {
		return nil
	}
	if n-1 > uint64(len(d.b)) { // each string takes at least one byte
		d.err = errShort
		return nil
	}
	out := make([]string, 0, n-1)
	for range n - 1 {
		out = append(out, d.str())
	}
	return out
}

func (d *decoder) time() time.Time {
	p := d.take(d.uvarint())
	var t time.Time
	if d.err == nil {
		d.err = t.UnmarshalBinary(p)
	}
	return t
}

// finish reports a decoding error or trailing bytes.
func (d *decoder) finish() error {
	if d.err == nil && len(d.b) > 0 {
		d.err = errors.New("trailing bytes")
	}
	return d.err
}

const (
	flagInitialized = 1 << iota
	flagDestroyed
)

func marshalRecord(r *rivetdriver.ActorRecord) []byte {
	e := encoder{b: make([]byte, 0, 64+len(r.Input))}
	e.str(r.ID)
	e.str(r.Namespace)
	e.str(r.Name)
	e.strs(r.Key)
	e.bytes(r.Input)
	e.time(r.CreatedAt)
	e.uvarint(r.Generation)
	var flags uint64
	if r.Initialized {
		flags |= flagInitialized
	}
	if r.Destroyed {
		flags |= flagDestroyed
	}
	e.uvarint(flags)
	return e.b
}

func unmarshalRecord(p []byte) (rivetdriver.ActorRecord, error) {
	d := decoder{b: p}
	var r rivetdriver.ActorRecord
	r.ID = d.str()
	r.Namespace = d.str()
	r.Name = d.str()
	r.Key = d.strs()
	r.Input = d.bytes()
	r.CreatedAt = d.time()
	r.Generation = d.uvarint()
	flags := d.uvarint()
	r.Initialized = flags&flagInitialized != 0
	r.Destroyed = flags&flagDestroyed != 0
	if d.err == nil && flags&^(flagInitialized|flagDestroyed) != 0 {
		d.err = errors.New("unknown flags")
	}
	return r, d.finish()
}

func marshalAlarm(a *rivetdriver.Alarm) []byte {
	e := encoder{b: make([]byte, 0, 64+len(a.Args))}
	e.str(a.ID)
	e.str(a.ActorID)
	e.time(a.At)
	e.str(a.Action)
	e.bytes(a.Args)
	e.time(a.CreatedAt)
	return e.b
}

func unmarshalAlarm(p []byte) (rivetdriver.Alarm, error) {
	d := decoder{b: p}
	var a rivetdriver.Alarm
	a.ID = d.str()
	a.ActorID = d.str()
	a.At = d.time()
	a.Action = d.str()
	a.Args = d.bytes()
	a.CreatedAt = d.time()
	return a, d.finish()
}
