package protocol

// DecodeCBORValue converts one CBOR value as the client writes a
// create-time input (cbor-x output of encodeJsonCompatValue, in REST
// "input" and rvt-input) to internal CBOR, reviving compat tags.
func DecodeCBORValue(data []byte) ([]byte, error) {
	t, err := parseCBOR(data, false)
	if err != nil {
		return nil, invalid(CBOR, err)
	}
	v, err := wireValue(t, true)
	if err != nil {
		return nil, invalid(CBOR, err)
	}
	return v, nil
}
