package envoy_test

import (
	"fmt"

	"github.com/rivetgo/rivet/internal/envoy"
)

// A runner answers the engine's ping on its WebSocket: every binary frame
// is one bare message, ToEnvoy in and ToRivet out.
func Example() {
	frame, _ := envoy.EncodeToEnvoy(envoy.ToEnvoyPing{Ts: 1733212345678})

	m, err := envoy.DecodeToEnvoy(frame)
	if err != nil {
		fmt.Println(err)
		return
	}
	switch m := m.(type) {
	case envoy.ToEnvoyPing:
		reply, _ := envoy.EncodeToRivet(envoy.ToRivetPong{Ts: m.Ts})
		fmt.Printf("pong % x\n", reply)
	default:
		fmt.Printf("unhandled %T\n", m)
	}
	// Output: pong 04 4e 95 81 8b 93 01 00 00
}

// The serverless start request carries its protocol version in front of
// the message.
func ExampleCutVersion() {
	start := envoy.ToEnvoyCommands{{
		Checkpoint: envoy.ActorCheckpoint{ActorID: "a1", Generation: 1},
		Inner:      envoy.CommandStartActor{Config: envoy.ActorConfig{Name: "counter"}},
	}}
	body, _ := envoy.AppendToEnvoy(envoy.AppendVersion(nil), start)

	msg, err := envoy.CutVersion(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	m, err := envoy.DecodeToEnvoy(msg)
	if err != nil {
		fmt.Println(err)
		return
	}
	cmd := m.(envoy.ToEnvoyCommands)[0]
	fmt.Println(cmd.Checkpoint.ActorID, cmd.Inner.(envoy.CommandStartActor).Config.Name)

	_, err = envoy.CutVersion([]byte{7, 0})
	fmt.Println(err)
	// Output:
	// a1 counter
	// envoy: protocol version 7 is not supported (this build speaks version 8)
}
