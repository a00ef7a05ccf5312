package envoy

import (
	"encoding/binary"
	"fmt"
)

// Version is the envoy protocol version of the schema this package is
// generated from (schema/v8.bare).
const Version uint16 = 8

// VersionError reports a versioned payload this package cannot decode.
type VersionError struct {
	Version uint16 // the version the payload carries
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("envoy: protocol version %d is not supported (this build speaks version %d)", e.Version, Version)
}

// AppendVersion appends the version prefix of a versioned payload: Version
// as two little-endian bytes. Follow it with the message, as in
// AppendToEnvoy(AppendVersion(nil), m).
func AppendVersion(dst []byte) []byte {
	return binary.LittleEndian.AppendUint16(dst, Version)
}

// CutVersion returns the message after the version prefix of a versioned
// payload. It fails if b is shorter than the prefix or carries another
// version than Version (a *VersionError).
func CutVersion(b []byte) (body []byte, err error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("envoy: versioned payload of %d bytes is shorter than its 2-byte version", len(b))
	}
	if v := binary.LittleEndian.Uint16(b); v != Version {
		return nil, &VersionError{Version: v}
	}
	return b[2:], nil
}
