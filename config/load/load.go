// Package load fills the typed configuration of package config with viper:
// each binary builds a fresh viper with precedence flag > ECSKV_*
// environment > config file > default, unmarshals into the struct, and
// validates it. It is the only package that imports viper, kept apart from
// package config so that a program importing the kvclient library does not
// pull in viper, cobra or pflag.
package load

import (
	"fmt"
	"os"
	"strings"

	"github.com/ecskv/ecskv/config"
	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// ConfigFlag is the flag naming a config file (YAML, TOML or JSON by extension).
const ConfigFlag = "config"

// ECS loads and validates the ECS configuration.
func ECS(flags *pflag.FlagSet) (config.ECS, error) {
	cfg := config.DefaultECS()
	if err := load(flags, &cfg); err != nil {
		return config.ECS{}, err
	}
	return cfg, cfg.Validate()
}

// KVServer loads and validates a kvserver configuration.
func KVServer(flags *pflag.FlagSet) (config.KVServer, error) {
	cfg := config.DefaultKVServer()
	if err := load(flags, &cfg); err != nil {
		return config.KVServer{}, err
	}
	return cfg, cfg.Validate()
}

// Client loads and validates a client configuration.
func Client(flags *pflag.FlagSet) (config.Client, error) {
	cfg := config.DefaultClient()
	if err := load(flags, &cfg); err != nil {
		return config.Client{}, err
	}
	return cfg, cfg.Validate()
}

// Admin loads and validates the configuration of an admin command.
func Admin(flags *pflag.FlagSet) (config.Admin, error) {
	cfg := config.DefaultAdmin()
	if err := load(flags, &cfg); err != nil {
		return config.Admin{}, err
	}
	return cfg, cfg.Validate()
}

// load fills out (which holds the defaults) from, in rising precedence, the
// config file, ECSKV_* environment variables and the flags that were set.
func load(flags *pflag.FlagSet, out any) error {
	v := viper.New()
	var defaults map[string]any
	if err := mapstructure.Decode(out, &defaults); err != nil {
		return fmt.Errorf("config: defaults: %w", err)
	}
	for k, val := range defaults {
		v.SetDefault(k, val)
	}
	v.SetEnvPrefix("ECSKV")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if flags != nil {
		// Bind only the flags that are configuration keys; others (--json,
		// --config) belong to the command.
		var bindErr error
		flags.VisitAll(func(f *pflag.Flag) {
			if _, ok := defaults[f.Name]; ok && bindErr == nil {
				bindErr = v.BindPFlag(f.Name, f)
			}
		})
		if bindErr != nil {
			return fmt.Errorf("config: %w", bindErr)
		}
	}
	if err := readFile(v, flags); err != nil {
		return err
	}
	if err := v.UnmarshalExact(out, func(c *mapstructure.DecoderConfig) {
		c.ErrorUnused = true
	}); err != nil {
		return fmt.Errorf("%w: %v", config.ErrInvalid, err)
	}
	return nil
}

func readFile(v *viper.Viper, flags *pflag.FlagSet) error {
	path := os.Getenv("ECSKV_CONFIG")
	if flags != nil {
		if f := flags.Lookup(ConfigFlag); f != nil && f.Changed {
			path = f.Value.String()
		}
	}
	if path == "" {
		return nil
	}
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return fmt.Errorf("%w: config file %s: %v", config.ErrInvalid, path, err)
	}
	return nil
}
