package main

import (
	"github.com/ecskv/ecskv/common/logutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newLogger returns the client's logger and a function that changes its
// level while the REPL runs (logLevel). logutil fixes the level at build
// time, so the logger is built at debug and filtered by an atomic level.
func newLogger(level string) (*zap.Logger, func(string) error, error) {
	atom := zap.NewAtomicLevel()
	if err := setLevel(atom, level); err != nil {
		return nil, nil, err
	}
	base, err := logutil.New("debug", "kvclient")
	if err != nil {
		return nil, nil, err
	}
	lg := base.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		filtered, err := zapcore.NewIncreaseLevelCore(c, atom)
		if err != nil {
			return c // cannot happen: the base core enables every level
		}
		return filtered
	}))
	return lg, func(l string) error { return setLevel(atom, l) }, nil
}

// setLevel accepts zap's level names and "off", which silences everything.
func setLevel(atom zap.AtomicLevel, level string) error {
	if level == "off" {
		atom.SetLevel(zapcore.InvalidLevel)
		return nil
	}
	return atom.UnmarshalText([]byte(level))
}
