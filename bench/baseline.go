package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/rivetgo/rivet/internal/codec"
	"github.com/rivetgo/rivet/internal/protocol"
)

// baseline answers the demo registry's protocol surface (counter and
// chatRoom, stateless actions and connections) from plain in-memory maps:
// no actor runtime, no persistence. It is the ceiling the runtime is
// measured against.
type baseline struct {
	mu       sync.Mutex
	counters map[string]int
	rooms    map[string][]map[string]any
	subs     map[string]map[*baseConn]bool // "name/key/event" → connections
}

func newBaseline() *baseline {
	return &baseline{counters: map[string]int{}, rooms: map[string][]map[string]any{}, subs: map[string]map[*baseConn]bool{}}
}

type baseConn struct {
	ws  *websocket.Conn
	enc protocol.Encoding
	wmu sync.Mutex
}

func (c *baseConn) send(m protocol.Message) {
	b, err := protocol.Encode(c.enc, m)
	if err != nil {
		return
	}
	typ := websocket.MessageBinary
	if !c.enc.Binary() {
		typ = websocket.MessageText
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.Write(ctx, typ, b)
}

// call runs an action; it returns the output and the event to broadcast.
func (s *baseline) call(name, key, action string, args []any) (out any, event string, evArgs []any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := name + "/" + key
	switch name + "." + action {
	case "counter.increment":
		n, _ := args[0].(uint64)
		s.counters[id] += int(n)
		return s.counters[id], "newCount", []any{s.counters[id]}
	case "counter.getCount":
		return s.counters[id], "", nil
	case "chatRoom.sendMessage":
		m := map[string]any{"user": args[0], "text": args[1], "ts": time.Now().UnixMilli()}
		s.rooms[id] = append(s.rooms[id], m)
		return m, "newMessage", []any{m}
	case "chatRoom.getHistory":
		return s.rooms[id], "", nil
	}
	return nil, "", nil
}

func (s *baseline) broadcast(name, key, event string, args []any) {
	if event == "" {
		return
	}
	b, _ := codec.MarshalArgs(args)
	s.mu.Lock()
	var to []*baseConn
	for c := range s.subs[name+"/"+key+"/"+event] {
		to = append(to, c)
	}
	s.mu.Unlock()
	for _, c := range to {
		c.send(protocol.Event{Name: event, Args: b})
	}
}

func (s *baseline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metadata" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"runtime":"baseline"}`)
		return
	}
	segs := strings.Split(strings.TrimPrefix(r.URL.Path, "/gateway/"), "/")
	if len(segs) < 2 {
		http.NotFound(w, r)
		return
	}
	name, key := segs[0], r.URL.Query().Get("rvt-key")
	if segs[1] == "connect" {
		s.connect(w, r, name, key)
		return
	}
	if len(segs) != 3 || segs[1] != "action" {
		http.NotFound(w, r)
		return
	}
	enc := protocol.HTTPEncoding(r.Header.Get("X-Rivet-Encoding"))
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	req, err := protocol.DecodeHTTPActionRequest(enc, body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	var args []any
	_ = codec.Unmarshal(req.Args, &args)
	out, ev, evArgs := s.call(name, key, segs[2], args)
	s.broadcast(name, key, ev, evArgs)
	ob, _ := codec.Marshal(out)
	resp, _ := protocol.Encode(enc, protocol.HTTPActionResponse{Output: ob})
	w.Header().Set("Content-Type", enc.ContentType())
	_, _ = w.Write(resp)
}

func (s *baseline) connect(w http.ResponseWriter, r *http.Request, name, key string) {
	enc := protocol.JSON
	for _, p := range strings.Split(r.Header.Get("Sec-WebSocket-Protocol"), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(p), "rivet_encoding."); ok {
			enc, _ = protocol.ParseEncoding(v)
		}
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"rivet"}, InsecureSkipVerify: true})
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 20)
	c := &baseConn{ws: ws, enc: enc}
	c.send(protocol.Init{ActorID: name + "-" + key, ConnectionID: "00000000-0000-4000-8000-000000000000"})
	defer func() {
		s.mu.Lock()
		for _, m := range s.subs {
			delete(m, c)
		}
		s.mu.Unlock()
		_ = ws.CloseNow()
	}()
	for {
		_, data, err := ws.Read(context.Background())
		if err != nil {
			return
		}
		msg, err := protocol.DecodeToServer(enc, data)
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case protocol.SubscriptionRequest:
			k := name + "/" + key + "/" + m.EventName
			s.mu.Lock()
			if s.subs[k] == nil {
				s.subs[k] = map[*baseConn]bool{}
			}
			if m.Subscribe {
				s.subs[k][c] = true
			} else {
				delete(s.subs[k], c)
			}
			s.mu.Unlock()
		case protocol.ActionRequest:
			var args []any
			_ = codec.Unmarshal(m.Args, &args)
			out, ev, evArgs := s.call(name, key, m.Name, args)
			s.broadcast(name, key, ev, evArgs)
			ob, _ := codec.Marshal(out)
			c.send(protocol.ActionResponse{ID: m.ID, Output: ob})
		}
	}
}
