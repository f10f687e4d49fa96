package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// ConfigFlag is the flag naming a config file (YAML, TOML or JSON by extension).
const ConfigFlag = "config"

// ErrInvalid wraps every configuration error.
var ErrInvalid = errors.New("config: invalid")

// LoadECS loads and validates the ECS configuration.
func LoadECS(flags *pflag.FlagSet) (ECS, error) {
	cfg := DefaultECS()
	if err := load(flags, &cfg); err != nil {
		return ECS{}, err
	}
	return cfg, cfg.Validate()
}

// LoadKVServer loads and validates a kvserver configuration.
func LoadKVServer(flags *pflag.FlagSet) (KVServer, error) {
	cfg := DefaultKVServer()
	if err := load(flags, &cfg); err != nil {
		return KVServer{}, err
	}
	return cfg, cfg.Validate()
}

// LoadClient loads and validates a client configuration.
func LoadClient(flags *pflag.FlagSet) (Client, error) {
	cfg := DefaultClient()
	if err := load(flags, &cfg); err != nil {
		return Client{}, err
	}
	return cfg, cfg.Validate()
}

// LoadAdmin loads and validates the configuration of an admin command.
func LoadAdmin(flags *pflag.FlagSet) (Admin, error) {
	cfg := DefaultAdmin()
	if err := load(flags, &cfg); err != nil {
		return Admin{}, err
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
		return fmt.Errorf("%w: %v", ErrInvalid, err)
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
		return fmt.Errorf("%w: config file %s: %v", ErrInvalid, path, err)
	}
	return nil
}
