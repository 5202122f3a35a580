package launch

import (
	"context"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// probeTimeout bounds one probe: an agent answers status at once.
const probeTimeout = 2 * time.Second

// probe reports whether an agent answers at socket, and its pid. It is
// the only place that talks to the agent.
func probe(ctx context.Context, socket string) (pid int, ok bool) {
	if ctx.Err() != nil {
		return 0, false
	}
	st, err := (&ipc.Client{Path: socket, Timeout: probeTimeout}).Status()
	if err != nil {
		return 0, false
	}
	return st.PID, true
}
