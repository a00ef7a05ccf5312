package rivet

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// LogConfig configures the logger a Runtime builds when Config.Logger is
// nil. Its settings follow RivetKit's logging variables (LOG_LEVEL,
// LOG_TIMESTAMP, LOG_TARGET) plus LOG_FORMAT.
type LogConfig struct {
	// Level is the minimum level logged: trace, debug, info (default),
	// warn, error, fatal or silent. RivetKit's default is warn; see
	// docs/migrating-from-rivetkit.md for why rivetgo shows info.
	Level string
	// Format is text (default, logfmt-style key=value) or json.
	Format string
	// Timestamp adds each record's time.
	Timestamp bool
	// Target adds the source file and line that logged the record.
	Target bool
}

// Log levels beyond slog's four, matching RivetKit's names.
const (
	LevelTrace = slog.LevelDebug - 4
	LevelFatal = slog.LevelError + 4
)

var levelNames = map[string]slog.Level{
	"trace": LevelTrace, "debug": slog.LevelDebug, "info": slog.LevelInfo,
	"warn": slog.LevelWarn, "error": slog.LevelError, "fatal": LevelFatal,
}

// NewLogger builds a slog.Logger writing to w as lc says. Every record an
// actor logs carries its name (actor), key and id (actor_id).
func NewLogger(w io.Writer, lc LogConfig) (*slog.Logger, error) {
	level := strings.ToLower(strings.TrimSpace(lc.Level))
	if level == "" {
		level = "info"
	}
	if level == "silent" {
		return slog.New(slog.DiscardHandler), nil
	}
	lv, ok := levelNames[level]
	if !ok {
		return nil, fmt.Errorf("rivet: log level %q is not one of trace, debug, info, warn, error, fatal, silent", lc.Level)
	}
	opts := &slog.HandlerOptions{Level: lv, AddSource: lc.Target, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) > 0 {
			return a
		}
		switch a.Key {
		case slog.TimeKey:
			if !lc.Timestamp {
				return slog.Attr{}
			}
		case slog.LevelKey:
			if l, ok := a.Value.Any().(slog.Level); ok {
				switch l {
				case LevelTrace:
					a.Value = slog.StringValue("TRACE")
				case LevelFatal:
					a.Value = slog.StringValue("FATAL")
				}
			}
		}
		return a
	}}
	switch strings.ToLower(lc.Format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("rivet: log format %q is not text or json", lc.Format)
}
