// Package config loads a service's TOML configuration with viper, in the order
// every binary of this project shares: built-in defaults, then the TOML file,
// then environment variables, then command-line flags.
//
// Environment variables are the upper-cased key path joined with underscores
// behind the service's prefix: with prefix "AUTH", the key "server.listen"
// is overridden by AUTH_SERVER_LISTEN. Lists may be given as comma-separated
// values.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Options describe where one service's configuration comes from.
type Options struct {
	// EnvPrefix is the prefix of the environment overrides, e.g. "AUTH".
	EnvPrefix string
	// File is the TOML file to read. A missing file is an error only when
	// Required is set, so a binary still starts from a fresh clone with
	// nothing but defaults.
	File string
	// Required makes a missing File an error (set when --config was given).
	Required bool
	// Defaults maps dotted keys to default values. Every key that may be
	// overridden from the environment must have a default: viper only
	// consults the environment for keys it knows.
	Defaults map[string]any
	// Flags, when set, overrides keys by flags whose name is the dotted key
	// (e.g. --server.listen) and that were set on the command line.
	Flags *pflag.FlagSet
}

// Load fills out (a pointer to a struct with `mapstructure` tags) from the
// sources in Options. Unknown keys in the file are an error naming the key,
// so a typo does not silently fall back to a default.
func Load(opts Options, out any) error {
	v := viper.New()
	v.SetConfigType("toml")
	for k, val := range opts.Defaults {
		v.SetDefault(k, val)
	}
	if opts.File != "" {
		v.SetConfigFile(opts.File)
		if err := v.ReadInConfig(); err != nil {
			var pathErr *fs.PathError
			missing := errors.As(err, &pathErr) && errors.Is(pathErr.Err, fs.ErrNotExist)
			if !missing || opts.Required {
				return fmt.Errorf("read config %s: %w", opts.File, err)
			}
		}
	}
	if opts.EnvPrefix != "" {
		v.SetEnvPrefix(opts.EnvPrefix)
		v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
		v.AutomaticEnv()
	}
	if opts.Flags != nil {
		var bindErr error
		opts.Flags.Visit(func(f *pflag.Flag) {
			if v.IsSet(f.Name) || hasDefault(opts.Defaults, f.Name) {
				if err := v.BindPFlag(f.Name, f); err != nil && bindErr == nil {
					bindErr = fmt.Errorf("bind flag %s: %w", f.Name, err)
				}
			}
		})
		if bindErr != nil {
			return bindErr
		}
	}
	decode := func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.WeaklyTypedInput = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			stringToSliceHook,
		)
	}
	if err := v.Unmarshal(out, decode); err != nil {
		return fmt.Errorf("config %s: %w", describe(opts.File), err)
	}
	return nil
}

func hasDefault(defaults map[string]any, key string) bool {
	_, ok := defaults[key]
	return ok
}

func describe(file string) string {
	if file == "" {
		return "(defaults and environment)"
	}
	return file
}

// stringToSliceHook turns "a,b, c" from an environment variable into a slice,
// and an empty string into an empty slice rather than [""].
func stringToSliceHook(from reflect.Type, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Slice {
		return data, nil
	}
	s := strings.TrimSpace(data.(string))
	if s == "" {
		return []string{}, nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts, nil
}

// FileFromArgs returns the value of --config (or -config) in args, and
// whether it was given, so a main can load the file before it defines the
// rest of its flags.
func FileFromArgs(args []string, fallback string) (string, bool) {
	for i, a := range args {
		switch {
		case a == "--config" || a == "-config":
			if i+1 < len(args) {
				return args[i+1], true
			}
		case strings.HasPrefix(a, "--config="):
			return strings.TrimPrefix(a, "--config="), true
		case strings.HasPrefix(a, "-config="):
			return strings.TrimPrefix(a, "-config="), true
		}
	}
	return fallback, false
}

// Exists reports whether a file exists (used by mains to log which config
// file was read).
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Validator is a configuration that checks itself once loaded, naming the
// first bad key in its error.
type Validator interface {
	Validate() error
}

// LoadValid loads out as Load does and then validates it, so every binary
// reports a bad value the same way: "config: <key>: <why>".
func LoadValid(opts Options, out Validator) error {
	if err := Load(opts, out); err != nil {
		return err
	}
	if err := out.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
