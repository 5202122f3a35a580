package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/tapis-agent/tapis-agent/tapis/baseurl"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// errUsage marks command-line mistakes (exit code 2).
var errUsage = errors.New("usage")

func errExitCode(err error) int {
	if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// run parses args, serves the fake tenant until ctx ends, and returns nil
// on a clean shutdown. The base URL is the first line written to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tapis-fake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen `address`; loopback only")
	tenant := fs.String("tenant", "dev", "tenant `id`")
	accessTTL := fs.Duration("access-ttl", tapistest.DefaultAccessTTL, "access token `lifetime`")
	refreshTTL := fs.Duration("refresh-ttl", tapistest.DefaultRefreshTTL, "refresh token `lifetime`")
	approveAfter := fs.Duration("device-approve-after", 0, "approve device codes automatically this long after issue (0: never)")
	browserUser := fs.String("browser-user", "", "answer the browser pages as `NAME`: /authorize redirects to the client with a code at once, a device page enters the code")
	grantTypes := fs.String("grant-types", "", "the tenant's allowed grant types, comma-separated (default: all five)")
	users := map[string]string{}
	fs.Func("user", "a user as `NAME:PASSWORD` (repeatable)", func(v string) error {
		name, pw, ok := strings.Cut(v, ":")
		if !ok || name == "" || pw == "" {
			return errors.New("want NAME:PASSWORD")
		}
		users[name] = pw
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *accessTTL <= 0 || *refreshTTL <= 0 || *approveAfter < 0 {
		return fmt.Errorf("%w: lifetimes must be positive", errUsage)
	}
	if err := checkLoopback(*addr); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	var grants []string
	if *grantTypes != "" {
		grants = strings.Split(*grantTypes, ",")
	}
	s, err := tapistest.NewServer(tapistest.Config{
		GrantTypes:         grants,
		TenantID:           *tenant,
		Users:              users,
		AccessTTL:          *accessTTL,
		RefreshTTL:         *refreshTTL,
		DeviceApproveAfter: *approveAfter,
		Logger:             slog.New(slog.NewTextHandler(stderr, nil)),
	}, ln)
	if err != nil {
		ln.Close()
		return err
	}
	defer s.Close()
	s.SetBrowserUser(*browserUser)
	if _, err := fmt.Fprintln(stdout, s.URL()); err != nil {
		return fmt.Errorf("writing base URL: %w", err)
	}
	if len(users) == 0 {
		fmt.Fprintln(stderr, "tapis-fake: no users; add some with -user NAME:PASSWORD")
	}
	<-ctx.Done()
	return nil
}

// checkLoopback refuses listen addresses reachable from other hosts: the
// fake hands out tokens to anyone who knows a password.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad -addr %q: %w", addr, err)
	}
	if !baseurl.IsLoopback(host) {
		return fmt.Errorf("-addr %q is not a loopback address", addr)
	}
	return nil
}
