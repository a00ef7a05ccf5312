package rivet

import (
	"github.com/rivetgo/rivet/rivettype"
)

// Error is an error callers of an actor see: group, code, message and
// metadata, as the RivetKit protocol carries them. Test for a kind with
// errors.Is against the Err* values.
type Error = rivettype.Error

// Errors the runtime returns; compare with errors.Is.
var (
	ErrActorNotFound    = rivettype.ErrActorNotFound
	ErrNotRegistered    = rivettype.ErrNotRegistered
	ErrDuplicateKey     = rivettype.ErrDuplicateKey
	ErrActionNotFound   = rivettype.ErrActionNotFound
	ErrActionTimedOut   = rivettype.ErrActionTimedOut
	ErrCallbackTimedOut = rivettype.ErrCallbackTimedOut
	// ErrCallCycle: a call to an actor whose turn is waiting, directly or
	// through other actors, for the call (A calls B, B calls A). It fails
	// at once; see docs/concepts/calls.md.
	ErrCallCycle        = rivettype.ErrCallCycle
	ErrInvalidArguments = rivettype.ErrInvalidArguments
	ErrInvalidKey       = rivettype.ErrInvalidKey
	ErrStopping         = rivettype.ErrStopping
	ErrCommitFailed     = rivettype.ErrCommitFailed
	ErrStorage          = rivettype.ErrStorage
	ErrInternal         = rivettype.ErrInternal
	ErrOutgoingTooLong  = rivettype.ErrOutgoingTooLong
	ErrKVValueTooLarge  = rivettype.ErrKVValueTooLarge
	ErrKVKeyInvalid     = rivettype.ErrKVKeyInvalid
	ErrTooManySchedules = rivettype.ErrTooManySchedules
	ErrOverloaded       = rivettype.ErrMailboxFull
	// ErrTooManyConnections: the actor holds MaxConnectionsPerActor connections.
	ErrTooManyConnections = rivettype.ErrTooManyConns
)

// UserError returns an error that reaches callers as is: group "user",
// the given code (default "user_error"), message and metadata. Any other
// error returned or panicking out of actor code reaches callers as
// core.internal_error ("An internal error occurred", as RivetKit sends
// it) and is logged in full with the actor's name, key and id. A
// *rivet.Error that is not public keeps its group and code.
func UserError(message string, opts ...UserErrorOption) *Error {
	e := &Error{Group: "user", Code: "user_error", Message: message, Public: true}
	for _, o := range opts {
		o(e)
	}
	return e
}

// UserErrorOption customizes a UserError.
type UserErrorOption func(*Error)

// WithCode sets a UserError's code.
func WithCode(code string) UserErrorOption { return func(e *Error) { e.Code = code } }

// WithMetadata attaches metadata to a UserError.
func WithMetadata(md any) UserErrorOption { return func(e *Error) { e.Metadata = md } }

// publicError converts an error from actor code into what callers see.
func publicError(err error) error {
	if err == nil {
		return nil
	}
	if e, ok := rivettype.As(err); ok {
		if e.Public {
			return e
		}
		return &Error{Group: e.Group, Code: e.Code, Message: rivettype.InternalMessage}
	}
	return &Error{Group: ErrInternal.Group, Code: ErrInternal.Code, Message: rivettype.InternalMessage}
}
