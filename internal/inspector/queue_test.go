package inspector_test

import (
	"net/http"
	"testing"
)

// TestQueueEndpoint: the inspector lists an actor's queued messages,
// oldest first, with their bodies as JSON.
func TestQueueEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	id, h := b.actor(t, "queue")
	call(t, h, "enqueue", map[string]int{"n": 1})
	call(t, h, "enqueue", "second")
	code, body := b.do(t, "GET", "/inspector/actors/"+id+"/queue", "", "")
	if code != http.StatusOK {
		t.Fatalf("GET queue: %d %v", code, body)
	}
	ms := body["messages"].([]any)
	if len(ms) != 2 {
		t.Fatalf("messages: %v", ms)
	}
	first, second := ms[0].(map[string]any), ms[1].(map[string]any)
	if first["name"] != "jobs" || mustJSON(t, first["body"]) != `{"n":1}` || mustJSON(t, second["body"]) != `"second"` {
		t.Fatalf("messages: %v", ms)
	}
	if first["id"].(float64) >= second["id"].(float64) || first["createdAt"] == "" {
		t.Fatalf("order or fields: %v", ms)
	}
	if _, kv := b.do(t, "GET", "/inspector/actors/"+id+"/kv", "", ""); len(kv["entries"].([]any)) != 0 {
		t.Fatalf("the queue shows in the KV listing: %v", kv)
	}
	if code, _ := b.do(t, "GET", "/inspector/actors/nope/queue", "", ""); code != http.StatusNotFound {
		t.Fatalf("unknown actor: %d", code)
	}
}
