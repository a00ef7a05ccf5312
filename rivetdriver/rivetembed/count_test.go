package rivetembed_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/rivetgo/rivet/rivetdriver"
	"github.com/rivetgo/rivet/rivetdriver/rivetembed"
)

// CountLiveActors counts live actors per name across namespaces; destroyed
// actors do not count, and keys that look like a prefix of another name's
// keys do not leak into its count.
func TestCountLiveActors(t *testing.T) {
	ctx := context.Background()
	d, err := rivetembed.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	create := func(id, ns, name string, key ...string) {
		t.Helper()
		if err := d.CreateActor(ctx, rivetdriver.ActorRecord{ID: id, Namespace: ns, Name: name, Key: key}); err != nil {
			t.Fatal(err)
		}
	}
	create("1", "default", "counter", "a")
	create("2", "default", "counter", "b", "c")
	create("3", "other", "counter")
	create("4", "default", "count", "er")      // a name that is a prefix of another
	create("5", "default", "counter\x00", "x") // a name with a NUL
	create("6", "default", "room", "r")
	create("7", "default", "room", "gone")
	rec, _, err := d.Activate(ctx, "7")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(ctx, []*rivetdriver.Commit{{ActorID: "7", Generation: rec.Generation, Destroy: true}}); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	if err := d.CountLiveActors(ctx, func(name string, n int64) { got[name] += n }); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"counter": 3, "count": 1, "counter\x00": 1, "room": 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("CountLiveActors = %v, want %v", got, want)
	}
}
