// Command http-oauth2-mock-server is the mock OAuth 2.1 / OpenID Connect
// authorization server for development and tests. See docs/INTERFACES.md
// for its configuration, endpoints and control API.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/authserver"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/config"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/httpserve"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/logging"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/metrics"
)

const defaultConfigFile = "config/auth_server_config.toml"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], nil)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

// run serves until ctx is done; listening, when set, learns the bound
// address (tests listen on port 0).
func run(ctx context.Context, args []string, listening func(net.Addr)) error {
	cfg, file, err := loadConfig(args)
	if err != nil {
		return err
	}
	logger, err := logging.New(os.Stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	cfg.Logger = logger
	cfg.Metrics = metrics.New(metrics.NamespaceAuthServer, metrics.AuthServerSeries)
	srv, err := authserver.New(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()

	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("server.listen %s: %w", cfg.Server.Listen, err)
	}
	httpServer := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	tls := cfg.Server.TLSCertFile != ""
	logger.Info("http-oauth2-mock-server listening", "addr", ln.Addr().String(), "issuer", cfg.Server.Issuer,
		"tls", tls, "storage", cfg.Storage.Driver, "auto_approve", cfg.Mock.AutoApprove,
		"control_api", cfg.Mock.ControlAPI, "config", file)
	if listening != nil {
		listening(ln.Addr())
	}
	return httpserve.Serve(ctx, httpServer, ln,
		httpserve.TLSFiles{CertFile: cfg.Server.TLSCertFile, KeyFile: cfg.Server.TLSKeyFile}, logger)
}

// loadConfig reads defaults, the TOML file, AUTH_* environment variables
// and flags named like the dotted keys.
func loadConfig(args []string) (authserver.Config, string, error) {
	file, required := config.FileFromArgs(args, defaultConfigFile)
	flags := pflag.NewFlagSet("http-oauth2-mock-server", pflag.ContinueOnError)
	flags.String("config", defaultConfigFile, "TOML configuration file")
	flags.String("server.listen", "", "listen address, e.g. 127.0.0.1:3002")
	flags.String("server.issuer", "", "issuer URL, e.g. http://localhost:3002")
	flags.String("server.tls_cert_file", "", "TLS certificate (PEM); with server.tls_key_file serves HTTPS")
	flags.String("server.tls_key_file", "", "TLS private key (PEM)")
	flags.String("keys.private_key_file", "", "PEM signing key (generated when missing)")
	flags.String("keys.algorithm", "", "RS256 or ES256")
	flags.String("storage.driver", "", "memory or sqlite")
	flags.String("storage.sqlite_path", "", "SQLite database file")
	flags.Bool("mock.auto_approve", false, "approve authorizations at once as login_hint or mock.default_user")
	flags.Bool("mock.control_api", false, "enable /control/* for loopback callers")
	flags.String("log.level", "", "debug, info, warn or error")
	flags.String("log.format", "", "text or json")
	if err := flags.Parse(args); err != nil {
		return authserver.Config{}, "", err
	}
	var cfg authserver.Config
	err := config.LoadValid(config.Options{
		EnvPrefix: "AUTH", File: file, Required: required, Defaults: authserver.Defaults(), Flags: flags,
	}, &cfg)
	return cfg, file, err
}
