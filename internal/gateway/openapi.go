package gateway

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3.0 document of the server's HTTP routes:
// the engine REST API, the actor gateway, /metrics, this document and
// the inspector's admin API. openapi_test.go validates it and checks real
// requests and responses against it, so it cannot drift from the code.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI document served at /openapi.json.
func OpenAPI() []byte { return openAPIDoc }

// openAPI serves GET /openapi.json.
func (g *Gateway) openAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		g.fail(w, r, errMethodNotAllowed.With("%s /openapi.json is not supported; use GET.", r.Method))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(openAPIDoc)
	}
}
