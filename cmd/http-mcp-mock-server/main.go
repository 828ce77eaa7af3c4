// Command http-mcp-mock-server is the OAuth2-protected MCP server: MCP over
// Streamable HTTP at /mcp that accepts only bearer tokens from its
// authorization server. See docs/INTERFACES.md for its configuration.
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

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/config"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/httpserve"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/logging"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/mcpserver"
)

const defaultConfigFile = "config/mcp_server_config.toml"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg, file, err := loadConfig(args)
	if err != nil {
		return err
	}
	logger, err := logging.New(os.Stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	srv, err := mcpserver.New(cfg, mcpserver.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer srv.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv.Start(ctx)

	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("server.listen %s: %w", cfg.Server.Listen, err)
	}
	httpServer := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// Bounds a slowly trickled body; no WriteTimeout, which would cut
		// long-lived SSE streams.
		ReadTimeout:    30 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	logger.Info("http-mcp-mock-server listening", "addr", ln.Addr().String(), "resource", cfg.Server.Resource,
		"issuer", cfg.Auth.Issuer, "auth_enabled", cfg.Auth.Enabled, "auth_mode", cfg.Auth.Mode, "config", file)
	return httpserve.Serve(ctx, httpServer, ln, httpserve.TLSFiles{}, logger)
}

// loadConfig reads defaults, the TOML file, MCP_* environment variables and
// flags named like the dotted keys.
func loadConfig(args []string) (mcpserver.Config, string, error) {
	file, required := config.FileFromArgs(args, defaultConfigFile)
	flags := pflag.NewFlagSet("http-mcp-mock-server", pflag.ContinueOnError)
	flags.String("config", defaultConfigFile, "TOML configuration file")
	flags.String("server.listen", "", "listen address, e.g. 127.0.0.1:3003")
	flags.String("server.resource", "", "this server's resource URL (the accepted token audience)")
	flags.Bool("server.stateless", false, "stateless Streamable HTTP")
	flags.String("auth.issuer", "", "authorization server issuer URL")
	flags.String("auth.mode", "", "jwt or introspection")
	flags.Bool("auth.enabled", true, "false only for protocol tests and benchmarks (loopback only)")
	flags.String("audit.file", "", "JSONL audit log file")
	flags.String("log.level", "", "debug, info, warn or error")
	if err := flags.Parse(args); err != nil {
		return mcpserver.Config{}, "", err
	}
	var cfg mcpserver.Config
	err := config.LoadValid(config.Options{
		EnvPrefix: "MCP", File: file, Required: required, Defaults: mcpserver.Defaults(), Flags: flags,
	}, &cfg)
	return cfg, file, err
}
