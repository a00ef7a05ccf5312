// Package protocol holds the messages of the RivetKit client protocol (v4,
// rivetkit@2.3.x) and their three wire encodings, byte-compatible with the
// TypeScript client. The gateway uses it as the server; a Go client uses the
// same functions in the other direction.
//
// # Messages and API
//
// WebSocket messages are [ToServer] ([ActionRequest], [SubscriptionRequest])
// and [ToClient] ([Init], [Error], [ActionResponse], [Event]); HTTP bodies
// are [HTTPActionRequest], [HTTPActionResponse], [HTTPResponseError],
// [HTTPQueueSendRequest] and [HTTPQueueSendResponse]. [Encode] writes any of
// them; a Decode function per kind reads them. Decoding is meant for
// untrusted input: it never panics, allocates at most in proportion to the
// input, and every error wraps [ErrInvalid].
//
// User values (arguments, outputs, event arguments, error metadata, queue
// bodies) are carried as internal CBOR bytes in the deterministic form of
// package codec. Decoders produce that form; encoders accept anything
// codec.Unmarshal reads. Arguments are always a CBOR array: on input null
// becomes [] and a value that is not an array is an error (RivetKit would
// take v as [v]; no client sends that).
//
// # Encodings
//
//   - JSON: {"body":{"tag":…,"val":…}} for WebSocket messages, plain objects
//     for HTTP. The whole message is compat-tagged (below) both ways.
//   - CBOR: the same structure as CBOR maps. The TS client writes plain
//     cbor-x output (maps with 16-bit lengths, bigint as 0x1b, undefined,
//     tag 64 on a Uint8Array) and reads through decodeCborCompat, which
//     revives compat tags. So a server reads client values as they are and
//     compat-tags what it writes. Action ids are written as 0x1b plus 8
//     bytes, even 0: cbor-x decodes only that form as a bigint, which the
//     client requires. A Go client does the mirror image and writes maps
//     the cbor-x way (b9 0001), so its frames match the TS client's.
//   - BARE: a u16 little-endian version (written as [CurrentVersion],
//     versions 1 to 4 read) and the body. A Cbor field is
//     cbor(encodeJsonCompatValue(v)) in both directions, so compat tags are
//     revived on input and applied on output. Input must be exact: trailing
//     bytes, unknown union tags, invalid UTF-8, a varint over 10 bytes or
//     not in its shortest form, and a length beyond the input are errors.
//
// # Compat tagging
//
// JS values that JSON lacks travel as two-element arrays (encoding.ts):
// ["$BigInt","123"], ["$Uint8Array",base64], ["$ArrayBuffer",base64],
// ["$Undefined",0] and ["$Set",[…]]. A real array of two elements whose
// first is a string starting with "$" is escaped with one more "$"
// (["$$x",v] stands for ["$x",v]). An unknown tag is an error: the client
// throws on one too, which is why everything sent is escaped.
//
// Decisions where JS and Go values differ:
//
//   - undefined (CBOR f7, ["$Undefined",0]) becomes null. Go has no
//     undefined and codec decodes both to nil; nothing is sent as
//     undefined.
//   - Sets (["$Set",…], CBOR tag 258) become arrays. Other CBOR tags than 0
//     and 1 (times) and 2 and 3 (bignums) are dropped and their content
//     kept: tag 64 gives a byte string.
//   - Times: a JS Date arrives in CBOR as tag 1 on seconds (cbor-x), read
//     to the millisecond, and in JSON as its ISO string (JSON.stringify),
//     which stays a string. Internally a time is tag 0 on RFC 3339 text in
//     UTC with nanoseconds (package codec); it is sent as that tag in CBOR
//     frames and BARE values, which cbor-x revives as a Date, and as the
//     text in JSON.
//   - Byte strings are sent as ["$Uint8Array",base64] in JSON and in BARE
//     values (as the TS client writes them), and as plain CBOR byte strings
//     in CBOR frames: cbor-x decodes those to a Uint8Array, which revive
//     leaves alone, and they are a third smaller.
//   - Integers stay integers and floats floats. A JSON number with a
//     fraction or exponent is a float; floats are written with one (6.0),
//     so they read back as floats. NaN and infinities are written as null in
//     JSON, as JSON.stringify does.
//   - JS numbers are doubles, exact up to 2^53-1. Integers beyond that are
//     sent as ["$BigInt","N"] in every encoding (a bigint to the client);
//     ["$BigInt"] and CBOR integers and bignums beyond 64 bits are read
//     into big integers (up to 8192 bits). In CBOR, cbor-x writes a number
//     that is an integer outside [-2^31, 2^32-1] as a float, and decodes
//     only integers of up to 4 bytes as numbers. So in CBOR frames and BARE
//     values an integer is written as a CBOR integer when it fits in 4
//     bytes and as a float up to 2^53-1; and on reading CBOR, an integral
//     float outside [-2^31, 2^32-1] and within 2^53-1 becomes an integer
//     again. Date.now() thus arrives as an integer in every encoding, and
//     an integer survives any round trip; a Go float that is an integer of
//     that size reads back as an integer.
//   - Map keys are strings. Integer keys (a JS Map, a Go map[int]T) are
//     turned into decimal strings; other keys are rejected.
//   - Values nest at most 128 arrays and maps deep, and an array or map
//     has at most 2^20 entries, within what codec accepts.
//
// Strings in messages built by Go code that are not valid UTF-8 are sent
// with U+FFFD in place of the invalid bytes.
package protocol
