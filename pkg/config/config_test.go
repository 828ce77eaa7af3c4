package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type testConfig struct {
	Server struct {
		Listen  string        `mapstructure:"listen"`
		Timeout time.Duration `mapstructure:"timeout"`
		Origins []string      `mapstructure:"origins"`
	} `mapstructure:"server"`
}

var testDefaults = map[string]any{
	"server.listen":  "127.0.0.1:1",
	"server.timeout": "5s",
	"server.origins": []string{},
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.toml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestLoadOrder(t *testing.T) {
	file := writeFile(t, "[server]\nlisten = \"127.0.0.1:2\"\ntimeout = \"7s\"\n")
	var c testConfig
	require.NoError(t, Load(Options{EnvPrefix: "TCFG", File: file, Defaults: testDefaults}, &c))
	assert.Equal(t, "127.0.0.1:2", c.Server.Listen)
	assert.Equal(t, 7*time.Second, c.Server.Timeout)

	t.Setenv("TCFG_SERVER_LISTEN", "127.0.0.1:3")
	t.Setenv("TCFG_SERVER_ORIGINS", "http://a, http://b")
	c = testConfig{}
	require.NoError(t, Load(Options{EnvPrefix: "TCFG", File: file, Defaults: testDefaults}, &c))
	assert.Equal(t, "127.0.0.1:3", c.Server.Listen)
	assert.Equal(t, []string{"http://a", "http://b"}, c.Server.Origins)

	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.String("server.listen", "", "")
	require.NoError(t, fs.Parse([]string{"--server.listen=127.0.0.1:4"}))
	c = testConfig{}
	require.NoError(t, Load(Options{EnvPrefix: "TCFG", File: file, Defaults: testDefaults, Flags: fs}, &c))
	assert.Equal(t, "127.0.0.1:4", c.Server.Listen)
}

func TestLoadMissingFile(t *testing.T) {
	var c testConfig
	missing := filepath.Join(t.TempDir(), "none.toml")
	require.NoError(t, Load(Options{File: missing, Defaults: testDefaults}, &c))
	assert.Equal(t, "127.0.0.1:1", c.Server.Listen)
	err := Load(Options{File: missing, Required: true, Defaults: testDefaults}, &c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "none.toml")
}

func TestLoadRejectsUnknownAndBadTypes(t *testing.T) {
	var c testConfig
	err := Load(Options{File: writeFile(t, "[server]\nlisen = \"x\"\n"), Defaults: testDefaults}, &c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "lisen")

	err = Load(Options{File: writeFile(t, "[server]\ntimeout = \"soon\"\n"), Defaults: testDefaults}, &c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "timeout")

	err = Load(Options{File: writeFile(t, "[server\n"), Defaults: testDefaults}, &c)
	require.Error(t, err)
}

func TestFileFromArgs(t *testing.T) {
	f, ok := FileFromArgs([]string{"--config", "x.toml"}, "d")
	assert.True(t, ok)
	assert.Equal(t, "x.toml", f)
	f, ok = FileFromArgs([]string{"--config=y.toml"}, "d")
	assert.True(t, ok)
	assert.Equal(t, "y.toml", f)
	f, ok = FileFromArgs(nil, "d")
	assert.False(t, ok)
	assert.Equal(t, "d", f)
}

type validatedConfig struct {
	testConfig `mapstructure:",squash"`
}

func (c *validatedConfig) Validate() error {
	if c.Server.Listen == "" {
		return errors.New("server.listen: must not be empty")
	}
	return nil
}

func TestLoadValid(t *testing.T) {
	var c validatedConfig
	require.NoError(t, LoadValid(Options{Defaults: testDefaults}, &c))
	assert.Equal(t, "127.0.0.1:1", c.Server.Listen)

	err := LoadValid(Options{File: writeFile(t, "[server]\nlisten = \"\"\n"), Defaults: testDefaults}, &c)
	require.EqualError(t, err, "config: server.listen: must not be empty")

	err = LoadValid(Options{File: writeFile(t, "[server\n"), Defaults: testDefaults}, &c)
	require.Error(t, err, "load errors come through unchanged")
}
