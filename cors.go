package rivet

import (
	"net/http"
	"time"

	"github.com/rivetgo/rivet/internal/gateway"
)

// CORSOptions are RivetKit's cors options (GatewayConfig.CORSOptions).
// The zero value keeps rivetgo's defaults, described in
// docs/concepts/cors.md: they apply to browser requests, those with an
// Origin header.
type CORSOptions struct {
	// AllowOrigin decides whether a browser origin that is neither this
	// server's nor in AllowedOrigins may call the gateway; an allowed one
	// is treated like a listed origin. Once it is set, the origins it
	// refuses get 403 guard.forbidden_origin (localhost included), as
	// with an allow-list. r is the request (its Origin header is origin).
	// RivetKit's origin function. It must be safe for concurrent use.
	AllowOrigin func(origin string, r *http.Request) bool
	// AllowMethods answer a preflight (Access-Control-Allow-Methods;
	// default GET, POST, PUT, DELETE, OPTIONS, PATCH). RivetKit's
	// allowMethods.
	AllowMethods []string
	// AllowHeaders answer a preflight (Access-Control-Allow-Headers;
	// default: the headers the preflight asks for). A list must include
	// the headers the official client sends (Content-Type and the
	// x-rivet-* ones). RivetKit's allowHeaders.
	AllowHeaders []string
	// NoCredentials answers allowed origins without
	// Access-Control-Allow-Credentials and drops the cookies of their
	// requests (this server's own pages keep them). RivetKit's
	// credentials: false. The official client's calls to /metadata and
	// /actors send credentials: a browser refuses their answers then.
	NoCredentials bool
	// MaxAge is how long a browser may cache a preflight's answer
	// (Access-Control-Max-Age, whole seconds; default 24 h; negative:
	// the header is left out). RivetKit's maxAge.
	MaxAge time.Duration
	// ExposeHeaders are the response headers a page may read
	// (Access-Control-Expose-Headers). Default: all of them, spelled
	// "*" without credentials and as the response's own header names
	// with credentials, where browsers read "*" literally. RivetKit's
	// exposeHeaders.
	ExposeHeaders []string
}

func (o CORSOptions) gateway() gateway.CORS {
	return gateway.CORS{
		AllowOrigin: o.AllowOrigin, AllowMethods: o.AllowMethods, AllowHeaders: o.AllowHeaders,
		NoCredentials: o.NoCredentials, MaxAge: o.MaxAge, ExposeHeaders: o.ExposeHeaders,
	}
}
