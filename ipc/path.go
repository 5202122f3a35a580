package ipc

import "github.com/tapis-agent/tapis-agent/ipc/wire"

// SocketPath returns the agent socket path: $TAPIS_AGENT_SOCK if set, else
// DefaultSocketPath.
func SocketPath() string { return wire.SocketPath() }

// DefaultSocketPath returns the well-known socket path, ignoring
// $TAPIS_AGENT_SOCK: $XDG_RUNTIME_DIR/tapis-agent/agent.sock, else
// /tmp/tapis-agent-$UID/agent.sock.
func DefaultSocketPath() string { return wire.DefaultSocketPath() }

// CheckDir reports an error unless dir is a directory (not a symlink) owned
// by the current user with no group or other permission bits. The error
// names the directory, what is wrong and what to do.
func CheckDir(dir string) error { return wire.CheckDir(dir) }
