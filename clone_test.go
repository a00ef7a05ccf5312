package rivet

import (
	"reflect"
	"sync"
	"testing"
	"time"
)

type cloneInner struct {
	M map[string]int
}

type cloneT struct {
	A      [2]map[string]int
	S      []cloneInner
	I      any
	P      *cloneInner
	Same1  map[string]int
	Same2  map[string]int
	T      time.Time
	F      func() int
	hidden []int
	Mu     sync.Mutex
}

// TestCloneValue pins what a copy of Vars/ConnState shares with the
// original: nothing reachable through maps, slices, arrays, structs and
// interfaces; everything behind pointers, channels and funcs.
func TestCloneValue(t *testing.T) {
	self := map[string]any{}
	self["self"] = self
	shared := map[string]int{"s": 1}
	now := time.Now()
	src := cloneT{
		A:      [2]map[string]int{{"a": 1}, nil},
		S:      []cloneInner{{M: map[string]int{"b": 2}}},
		I:      self,
		P:      &cloneInner{M: map[string]int{"p": 3}},
		Same1:  shared,
		Same2:  shared,
		T:      now,
		F:      func() int { return 7 },
		hidden: []int{1, 2},
	}
	dst := cloneValue(&src)

	dst.A[0]["a"] = 10
	dst.S[0].M["b"] = 20
	dst.hidden[0] = 100
	dst.Same1["s"] = 30
	if src.A[0]["a"] != 1 || src.S[0].M["b"] != 2 || src.hidden[0] != 1 || src.Same1["s"] != 1 {
		t.Fatalf("the copy shares storage with the original: %v %v %v %v", src.A, src.S, src.hidden, src.Same1)
	}
	if dst.Same2["s"] != 30 {
		t.Fatal("two references to one map should stay one map in the copy")
	}
	m := dst.I.(map[string]any)
	if reflect.ValueOf(m["self"]).UnsafePointer() != reflect.ValueOf(m).UnsafePointer() {
		t.Fatal("a self-containing map was not copied with its cycle")
	}
	m["x"] = 1
	if _, leaked := self["x"]; leaked {
		t.Fatal("interface value shared")
	}
	if dst.P != src.P || dst.F() != 7 || dst.A[1] != nil {
		t.Fatal("pointers and funcs are shared, nil maps stay nil")
	}
	if !dst.T.Equal(now) || dst.T != now {
		t.Fatal("time.Time changed in the copy")
	}
}
