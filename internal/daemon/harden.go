package daemon

import "log/slog"

// Harden shields the secrets the process is about to hold with what the
// system offers: everywhere no core dumps and files created private
// (umask 077); on Linux no ptrace or /proc/PID/mem by other processes of
// the user and memory locked against swap where the limits allow; on
// macOS no debugger attach (PT_DENY_ATTACH); on FreeBSD no tracing
// (PROC_TRACE_CTL). Call it first, before any secret enters memory. It
// changes the whole process for good. What it could not do, or what the
// system lacks, it logs as hardening_incomplete and returns, for status
// (Options.Warnings); none of that stops the daemon.
func Harden(log *slog.Logger) []string {
	w := harden()
	for _, d := range w {
		log.Warn("hardening_incomplete", "detail", d)
	}
	return w
}
