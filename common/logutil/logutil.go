// Package logutil builds the zap loggers every ecskv binary uses: structured,
// to stderr, quiet (warn) by default.
package logutil

import (
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a console logger at level (debug, info, warn, error) named
// after the component.
func New(level, component string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("logutil: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Encoding = "console"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.DisableStacktrace = true
	cfg.Sampling = nil
	lg, err := cfg.Build()
	if err != nil {
		return nil, fmt.Errorf("logutil: %w", err)
	}
	return lg.Named(component), nil
}
