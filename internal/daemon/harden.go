package daemon

import "log/slog"

// Harden shields the secrets the process is about to hold: on Linux no
// core dumps, no ptrace or /proc/PID/mem by other processes of the user,
// memory locked against swap where the limits allow; everywhere files
// created private (umask 077). Call it first, before any secret enters
// memory. It changes the whole process for good. What it could not do it
// logs as hardening_incomplete and returns, for status (Options.Warnings);
// none of that stops the daemon.
func Harden(log *slog.Logger) []string {
	w := harden()
	for _, d := range w {
		log.Warn("hardening_incomplete", "detail", d)
	}
	return w
}
