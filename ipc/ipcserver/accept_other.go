//go:build !linux

package ipcserver

import (
	"context"
	"net"
)

// runRaw answers frames in the accept loop on Linux only; elsewhere run
// accepts through package net.
func (d *dispatcher) runRaw(context.Context, *net.UnixListener) (bool, error) { return false, nil }
