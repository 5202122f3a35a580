package launch

import (
	"context"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
)

// probeTimeout bounds one probe: an agent answers status at once.
const probeTimeout = 2 * time.Second

// probe reports whether an agent answers at socket, and its pid. It is
// the only place that talks to the agent.
func probe(ctx context.Context, socket string) (pid int, ok bool) {
	st, err := (&ipcclient.Client{Path: socket, Timeout: probeTimeout}).Status(ctx)
	if err != nil {
		return 0, false
	}
	return st.PID, true
}
