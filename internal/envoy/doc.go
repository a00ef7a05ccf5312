// Package envoy is the codec of the Rivet Engine's runner protocol
// ("envoy", version 8): the messages a runner such as rivetgo exchanges
// with rivet-engine 2.3.19, as Go types with BARE encoders and decoders.
// It is wire-compatible with npm @rivetkit/engine-envoy-protocol 2.3.19,
// which RivetKit's own runners use.
//
// # Messages
//
// Each schema type is one Go type: a struct is a struct, a void type an
// empty struct, an enum a small integer type with constants, and a union
// an interface whose variants are value types (a type switch tells them
// apart; a pointer to a variant is not a variant). optional<T> is *T,
// list<T> is []T, map<K><V> is map[K]V, data is []byte and data[n] is
// [n]byte. Schema names become Go names with Go's initialisms: actorId is
// ActorID, KvRequestData is KVRequestData.
//
// The top-level messages, the unions no other type contains, each have
// Encode…, Append… and Decode… functions:
//
//   - ToRivet: envoy to engine
//   - ToEnvoy: engine to envoy
//   - ToEnvoyConn, ToGateway, ToOutbound, ActorCommandKeyData: the
//     engine's internal traffic and storage, here for completeness
//
// Decoding is strict, as RivetKit's decoders are: an unknown union tag or
// enum value, a bool or optional tag other than 0 or 1, a varint not in
// its shortest form, a string that is not UTF-8, a duplicate map key or a
// byte after the end of the message is an error (a *DecodeError with the
// byte offset). So a valid encoding has one decoding and re-encodes to the
// same bytes, except that maps are always encoded with their keys in
// ascending order. A length is checked against the input left before
// anything is allocated for it, and decoded values never share memory
// with the input. Encoding fails (an *EncodeError) on a nil or foreign
// union variant, an enum value outside the schema or a string that is not
// UTF-8.
//
// # Framing and versions
//
// The BARE encodings carry no version. The protocol puts it in two
// places:
//
//   - On the envoy's WebSocket to the engine, GET
//     /envoys/connect?protocol_version=8&namespace=…&envoy_key=…&version=…&pool_name=…
//     (subprotocols "rivet" and, with a token, "rivet_token.<token>"),
//     the version is fixed for the connection by the protocol_version
//     query parameter, and each binary message is exactly one encoded
//     ToRivet (envoy to engine) or ToEnvoy (engine to envoy).
//   - A payload that travels on its own carries the version in front: two
//     little-endian bytes, then the message (vbare's "embedded version").
//     The serverless start request, POST <runner url>/start from the
//     engine, has such a body holding a ToEnvoy (ToEnvoyCommands with one
//     CommandStartActor); the engine's internal messages are framed the
//     same way. AppendVersion writes the prefix and CutVersion checks and
//     strips it.
//
// The engine converts between protocol versions on its side; this package
// speaks version 8 only, and CutVersion refuses any other.
//
// # Regenerating
//
// envoy_gen.go is generated from schema/v8.bare by the small generator in
// ./gen (standard library only; it handles the BARE subset the schema
// uses). After changing the schema or the generator, run
//
//	go generate ./internal/envoy
//
// TestGeneratedUpToDate in ./gen fails while envoy_gen.go is stale. A
// newer protocol version means a new schema file, with the version in
// Version, and new golden files (testdata/golden.mjs, run with node after
// npm install in testdata/npm, encodes them with the npm package of the
// matching release).
package envoy

//go:generate go run ./gen -schema schema/v8.bare -out envoy_gen.go
//go:generate go run ./gen -schema gen/testdata/primitives.bare -out primitives_gen_test.go
