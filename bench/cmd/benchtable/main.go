// Command benchtable measures tapis-agent against baselines and prints one
// Markdown table, also written to bench/results.md with the date and the
// machine (make bench). Every figure is compared with a baseline measured
// in the same run, the two interleaved (A B A B …), and given as a median
// with its min–max.
//
// It runs the real binaries: tapis-agent and tapis-token from -bin (make
// bench builds them into bin/); the same two built at git revision
// -baseline-rev, the figures the current ones are compared with; the
// baseline programs of bench/baseline; and fake Tapis tenants
// (tapis/tapistest) in this process on 127.0.0.1. Everything it builds
// goes to a temporary directory, removed at the end.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/tapis-agent/tapis-agent/bench"
)

func main() {
	binDir := flag.String("bin", "bin", "directory holding tapis-agent and tapis-token")
	baselineRev := flag.String("baseline-rev", "6b1e21a", "git revision whose tapis-agent and tapis-token are measured as baselines (\"\" for none)")
	out := flag.String("out", "bench/results.md", "file to write the table to (\"\" for none)")
	quick := flag.Bool("quick", false, "fewer rounds: a smoke test of the driver, not figures to quote")
	only := flag.String("only", "", "comma-separated steps to run (start-up, throughput, refresh storm, tenants, python); implies -out \"\"")
	flag.Parse()
	if *only != "" {
		*out = ""
	}
	if err := run(*binDir, *baselineRev, *out, *quick, *only); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

func run(binDir, baselineRev, out string, quick bool, only string) error {
	w, err := newWorld(binDir, baselineRev)
	if err != nil {
		return err
	}
	defer w.close()
	p := params{startRounds: 1200, loadRounds: 3, loadTime: time.Second, pyRounds: 5, pyCalls: 300, tenants: 1000}
	if quick {
		p = params{startRounds: 20, loadRounds: 1, loadTime: 200 * time.Millisecond, pyRounds: 2, pyCalls: 30, tenants: 50}
	}
	var rows []bench.Row
	steps := []struct {
		name string
		f    func(*world, params) ([]bench.Row, error)
	}{
		{"start-up", startup},
		{"throughput", throughput},
		{"refresh storm", storm},
		{"tenants", tenants},
		{"python", python},
	}
	for _, s := range steps {
		if only != "" && !slices.Contains(strings.Split(only, ","), s.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "benchtable: %s …\n", s.name)
		r, err := s.f(w, p)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		rows = append(rows, r...)
	}
	table := bench.Table(rows)
	fmt.Print(table)
	if out == "" {
		return nil
	}
	doc := fmt.Sprintf("# tapis-agent benchmarks\n\n%s\n\nCommand: `make bench` (`go run ./bench/cmd/benchtable`). Medians with min–max; every baseline measured in the same run, interleaved with the figure it is compared with.\n\n%s\n%s",
		machine(), table, notes)
	return os.WriteFile(out, []byte(doc), 0o644)
}

// params scale the measurements.
type params struct {
	startRounds int           // process starts per binary
	loadRounds  int           // alternating rounds per load case
	loadTime    time.Duration // length of one load round
	pyRounds    int           // alternating rounds of the Python comparison
	pyCalls     int           // calls per Python round
	tenants     int           // tenants of the many-tenants agent
}

const notes = `Notes:
- Baseline revision: tapis-agent and tapis-token of git revision ` + "`-baseline-rev`" + ` (the last before the token frame), built as make build builds them from a temporary detached worktree; its agent runs beside the current one, logged in to the same fake tenant, and is measured in the same interleaved rounds.
- Start-up: wall time from fork to exit of each binary, its stdout to a pipe, the binaries taken in turn and their order rotated every round. ` + "`tapis-token`" + ` answers from its agent's cached token (the current one over the token frame, the baseline revision's over HTTP). The raw-syscall client (bench/baseline/rawtoken: its tenant argument and environment through package os, as any Go command; then socket, connect, write the request line, read until EOF, print the token, with package syscall) asks a do-nothing server (bench/baseline/nullagent) that reads the request line and answers one fixed line holding a token as large as the fake's. The baseline programs are built as make build builds ` + "`tapis-token`" + `: CGO_ENABLED=0, -trimpath, -ldflags '-s -w'. Every 100 rounds each binary is dropped from the page cache and run once, untimed, so that all are cached as a binary read from disk is: how a file was written (by the linker, by a copy) otherwise changes its start-up by up to a tenth, and where a file lands in memory changes it by a few hundredths from one caching to the next. Sizes are the files' sizes.
- Throughput: N goroutines of this driver ask for a token in a loop; each case runs rounds of 1 s (3 per case), the cases of one N in turn, their order rotated every round. The rate is the median of the rounds' answers per second; p50 and p99 are over every call of every round. "New connection per call" dials the agent's socket for every call: over the frame (a Go client over net.Dial("unix"), as ` + "`tapis-token`" + ` asks) or with HTTP GET /v1/token and "Connection: close" (net/http, as a client of the JSON API asks; the Python client asks for tokens over the frame); "kept-alive" reuses N connections (net/http client). The baseline revision's frame had no kept connections, so kept-alive is HTTP on both agents here; the Python rows measure kept frame connections. The baseline is the baseline revision's agent asked over HTTP in the same way; a new HTTP connection per call was its ` + "`tapis-token`" + `'s way.
- Refresh storm: callers ask for more validity than the token has left, so each needs a refresh; the fake answers the refresh grant after 200 ms so that every caller arrives while it is in flight. Each agent is asked its ` + "`tapis-token`" + `'s way, a new connection per call: the current one over the frame, the baseline revision's over HTTP; their storms alternate. The baselines are one caller forcing a refresh alone, and the baseline revision's agent.
- Tenants: one fake serves every tenant; RSS is VmRSS of the agent process. "In flight" is the most concurrent refresh grants upstream saw when every tenant needed a refresh at once (each refresh held 40 ms by the fake, asked over the frame).
- Python: the tapis_agent package (contrib/python/src) in one interpreter, over the token frame, a new connection per call or a KeptConnection, against json.load of a connect_tapis token file. The agent-backed tapipy call is t.authenticator.get_userinfo() of the tapipy stand-in (contrib/python/tests/standin: the real tapipy is not in Debian) with every request answered in the process by a requests transport adapter, no network: one client from tapis_agent.tapipy_client("dev"), whose pre-request hook asks the agent for the token on every call, on its kept connection, the other built with a fixed access token; the same number of calls of each, interleaved, round by round. The time added is the per-round difference.
`

// machine describes where the figures were taken.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := "unknown kernel"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	// Other work on the machine slows the figures that need a wake-up
	// (every round trip on the socket): say how busy it was.
	load := "unknown"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = strings.Join(f[:3], " ")
		}
	}
	return fmt.Sprintf("Date: %s  \nMachine: %s, %d CPUs, %s, %s/%s, %s; load average %s at the end of the run",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), model, runtime.NumCPU(), kernel, runtime.GOOS, runtime.GOARCH, runtime.Version(), load)
}
