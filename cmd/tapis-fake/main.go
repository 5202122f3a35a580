// Command tapis-fake serves a fake Tapis tenant (authenticator, tenants
// and sites API) on loopback, for demos and manual testing:
//
//	tapis-fake [-addr 127.0.0.1:0] [-tenant dev] [-user NAME:PASSWORD]...
//	           [-access-ttl 4h] [-refresh-ttl 8760h] [-device-approve-after DURATION]
//	           [-browser-user NAME] [-grant-types password,refresh_token,...]
//
// The first line of stdout is the tenant's base URL. Requests are logged
// to stderr (method, path, status; never bodies or tokens). It serves
// until SIGINT or SIGTERM and then exits 0.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "tapis-fake: %v\n", err)
		os.Exit(errExitCode(err))
	}
}
