// Package rivettype holds the types shared by the rivet runtime, its storage
// drivers and its clients. It imports only the standard library, so every
// other package can depend on it without cycles; package rivet re-exports
// what users need.
package rivettype

import (
	"errors"
	"fmt"
)

// Error is an error a caller of an actor can see: a group, a code, a
// human-readable message and optional metadata, exactly as the RivetKit wire
// protocol carries them.
//
// Stored or returned as a value it is {"group","code","message","metadata",
// "public"}, like the protocol's error messages.
type Error struct {
	Group    string `json:"group"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Metadata any    `json:"metadata,omitempty"`
	// Public reports whether Message and Metadata may be shown to remote
	// callers. Errors that are not public reach the wire with the generic
	// internal-error message.
	Public bool `json:"public,omitempty"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s.%s: %s", e.Group, e.Code, e.Message)
}

// Is matches another *Error with the same group and code, so that
// errors.Is(err, rivettype.ErrActionNotFound) works for any message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Group == e.Group && t.Code == e.Code
}

// InternalMessage is the message remote callers see for any error that is
// not public.
const InternalMessage = "An internal error occurred"

// Errors raised by the runtime. Compare with errors.Is; the message of a
// returned error is more specific.
var (
	ErrActorNotFound     = &Error{Group: "actor", Code: "not_found", Message: "Actor not found.", Public: true}
	ErrNotRegistered     = &Error{Group: "actor", Code: "not_registered", Message: "Actor name is not registered.", Public: true}
	ErrDuplicateKey      = &Error{Group: "actor", Code: "duplicate_key", Message: "An actor with this key already exists.", Public: true}
	ErrActionNotFound    = &Error{Group: "actor", Code: "action_not_found", Message: "Action was not found.", Public: true}
	ErrActionTimedOut    = &Error{Group: "actor", Code: "action_timed_out", Message: "Action timed out", Public: true}
	ErrCallCycle         = &Error{Group: "actor", Code: "call_cycle", Message: "Call cycle: the actor is waiting for this call.", Public: true}
	ErrCallbackTimedOut  = &Error{Group: "actor", Code: "callback_timed_out", Message: "Lifecycle callback timed out", Public: true}
	ErrInvalidArguments  = &Error{Group: "actor", Code: "invalid_arguments", Message: "Invalid action arguments.", Public: true}
	ErrInvalidRequest    = &Error{Group: "request", Code: "invalid", Message: "Invalid request.", Public: true}
	ErrInvalidKey        = &Error{Group: "actor", Code: "invalid_key", Message: "Invalid actor key.", Public: true}
	ErrStopping          = &Error{Group: "actor", Code: "stopping", Message: "The runtime is shutting down.", Public: true}
	ErrCommitFailed      = &Error{Group: "actor", Code: "commit_failed", Message: "The actor's changes could not be persisted; the actor restarted from its last durable state."}
	ErrStorage           = &Error{Group: "actor", Code: "storage_error", Message: "The actor's store failed to answer; the call did not run. Try again.", Public: true}
	ErrInternal          = &Error{Group: "core", Code: "internal_error", Message: InternalMessage}
	ErrIncomingTooLong   = &Error{Group: "message", Code: "incoming_too_long", Message: "Incoming message too long", Public: true}
	ErrOutgoingTooLong   = &Error{Group: "message", Code: "outgoing_too_long", Message: "Outgoing message too long", Public: true}
	ErrKVValueTooLarge   = &Error{Group: "kv", Code: "value_too_large", Message: "KV value too large.", Public: true}
	ErrKVKeyInvalid      = &Error{Group: "kv", Code: "invalid_key", Message: "Invalid KV key.", Public: true}
	ErrTooManySchedules  = &Error{Group: "schedule", Code: "too_many", Message: "Too many scheduled events.", Public: true}
	ErrMailboxFull       = &Error{Group: "actor", Code: "overloaded", Message: "The actor's mailbox is full.", Public: true}
	ErrConnectionClosed  = &Error{Group: "connection", Code: "closed", Message: "The connection is closed.", Public: true}
	ErrTooManyConns      = &Error{Group: "actor", Code: "too_many_connections", Message: "The actor has too many connections.", Public: true}
	ErrUserErrorDefaults = &Error{Group: "user", Code: "user_error", Public: true}
)

// With returns a copy of e with another message.
func (e *Error) With(format string, args ...any) *Error {
	c := *e
	c.Message = fmt.Sprintf(format, args...)
	return &c
}

// As returns err as an *Error if it is one or wraps one.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}
