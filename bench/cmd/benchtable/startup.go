package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/tapis-agent/tapis-agent/bench"
)

// prog is one program whose start-up is timed.
type prog struct {
	argv []string
	env  []string
	runs []time.Duration
}

func (pr *prog) run() (time.Duration, error) {
	cmd := exec.Command(pr.argv[0], pr.argv[1:]...)
	cmd.Env = pr.env
	cmd.Stdout = io.Discard
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("running %s: %w", pr.argv[0], err)
	}
	return time.Since(start), nil
}

func (pr *prog) sample() bench.Sample { return bench.Durations(pr.runs) }

// startup times tapis-token with a cached token against a hello-world Go
// binary, the least Go client of the token frame (rawtoken) against a
// do-nothing agent (nullagent), /bin/true and the tapis-token of the
// baseline revision against its agent, rotating the order every round; it
// also compares the binaries' sizes.
func startup(w *world, p params) ([]bench.Row, error) {
	nullSock, null, err := w.startNullAgent()
	if err != nil {
		return nil, err
	}
	defer null.stop()
	tok := &prog{argv: []string{w.cur.tokenBin, "dev"}, env: w.cur.env}
	hello := &prog{argv: []string{w.hello}, env: w.cur.env}
	raw := &prog{argv: []string{w.rawToken, "dev"}, env: []string{"TAPIS_AGENT_SOCK=" + nullSock}}
	tru := &prog{argv: []string{"/bin/true"}, env: w.cur.env}
	progs := []*prog{tok, hello, raw, tru}
	var old *prog
	if w.old != nil {
		old = &prog{argv: []string{w.old.tokenBin, "dev"}, env: w.old.env}
		progs = append(progs, old)
	}
	if err := timeStarts(progs, p.startRounds); err != nil {
		return nil, err
	}

	what := fmt.Sprintf("`tapis-token` with a cached token, fork to exit (%d runs)", p.startRounds)
	row := func(what string, a *prog, baseline string, b *prog) bench.Row {
		return bench.Row{What: what, Measured: bench.MedianRange(a.sample()),
			Baseline: baseline + " " + bench.MedianRange(b.sample()), Ratio: bench.Ratio(a.sample().Median(), b.sample().Median())}
	}
	rows := []bench.Row{
		row(what, tok, "hello-world Go binary", hello),
		row(what, tok, "raw-syscall Go client of the frame against a do-nothing server", raw),
		row(what, tok, "`/bin/true`", tru),
	}
	oldWhat := fmt.Sprintf("%s with a cached token, fork to exit (same rounds)", w.oldToken())
	if old == nil {
		rows = append(rows, missingRow(oldWhat, w.oldMissing))
	} else {
		rows = append(rows,
			row(oldWhat, old, "hello-world Go binary", hello),
			row(what, tok, w.oldToken(), old))
	}
	return append(rows, sizeRows(w)...), nil
}

// timeStarts runs every program rounds times, rotating their order
// every round, and records each run in its prog.
//
// Every recache rounds, the binaries are dropped from the page cache and
// started once, untimed, so that the kernel caches each as it caches any
// binary read from disk. Left as written, the linker's output and a copied
// file are cached differently, and exec maps them at speeds up to a tenth
// apart; and where in memory a file lands changes its start-up by a few
// hundredths from one caching to the next, so the runs are spread over
// several.
func timeStarts(progs []*prog, rounds int) error {
	const recache = 100
	for i := range rounds {
		if i%recache == 0 {
			for _, pr := range progs {
				if err := evict(pr.argv[0]); err != nil {
					return err
				}
				if _, err := pr.run(); err != nil {
					return err
				}
			}
		}
		for j := range progs {
			pr := progs[(i+j)%len(progs)]
			d, err := pr.run()
			if err != nil {
				return err
			}
			pr.runs = append(pr.runs, d)
		}
	}
	return nil
}

// sizeRows compares the size of tapis-token with the other binaries
// timed: what exec maps counts in its start-up.
func sizeRows(w *world) []bench.Row {
	type bin struct{ name, path string }
	bins := []bin{{"hello-world Go binary", w.hello}, {"raw-syscall frame client", w.rawToken}}
	if w.old != nil {
		bins = slices.Insert(bins, 0, bin{w.oldToken(), w.old.tokenBin})
	}
	size := func(path string) float64 {
		st, err := os.Stat(path)
		if err != nil {
			return 0
		}
		return float64(st.Size())
	}
	tok := size(w.cur.tokenBin)
	var rows []bench.Row
	for _, b := range bins {
		s := size(b.path)
		rows = append(rows, bench.Row{What: "`tapis-token` binary size", Measured: mib(tok),
			Baseline: b.name + " " + mib(s), Ratio: bench.Ratio(tok, s)})
	}
	if w.old == nil {
		rows = append(rows, missingRow("`tapis-token` binary size against the baseline revision's", w.oldMissing))
	}
	return rows
}

func mib(bytes float64) string { return fmt.Sprintf("%.2f MiB", bytes/(1<<20)) }

// missingRow stands for a figure of the baseline revision that this run
// could not measure.
func missingRow(what, why string) bench.Row {
	return bench.Row{What: what, Measured: "not measured: " + why, Baseline: "–", Ratio: "–"}
}
