// Package chat is a chat room web page served by the Go binary: a Vite +
// React page (web/) that uses the official @rivetkit/react client against
// the demo registry's chatRoom actor at the page's own origin.
//
//	chatRoom: sendMessage(user, text) → {user, text, ts} (event newMessage), getHistory()
//
// One actor per room key holds the room's durable history; every
// connected tab receives new messages as newMessage events. The built
// page (web/dist) is embedded, so serving it needs no Node:
//
//	x, _ := examples.Lookup("chat")
//	http.ListenAndServe(addr, x.Handler(rt.Handler()))
package chat

import (
	"embed"
	"io/fs"

	"github.com/rivetgo/rivet"
	"github.com/rivetgo/rivet/examples/demo"
)

//go:embed all:web/dist
var dist embed.FS

// Web returns the built page: index.html and assets/ (npm run build in
// web/ regenerates it).
func Web() fs.FS {
	sub, err := fs.Sub(dist, "web/dist")
	if err != nil {
		panic("chat: embedded page: " + err.Error())
	}
	return sub
}

// Definitions returns the chatRoom actor.
func Definitions() []rivet.Definition {
	for _, d := range demo.Definitions() {
		if d.Name() == "chatRoom" {
			return []rivet.Definition{d}
		}
	}
	panic("chat: the demo registry has no chatRoom actor")
}
