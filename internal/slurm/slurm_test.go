package slurm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeCommand writes an executable script called name into dir that runs
// body with sh. The real squeue is tested in e2e, against a real Slurm;
// these are its answers as observed there, and its failures.
func fakeCommand(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestStates(t *testing.T) {
	cases := []struct {
		name   string
		squeue string
		jobs   []string
		want   map[string]string
		err    string
	}{
		{"running and pending", `printf '12 12 RUNNING\n13 13 PENDING\n'`, []string{"12", "13"}, map[string]string{"12": "RUNNING", "13": "PENDING"}, ""},
		{"array task by either id", `printf '3 2_1 RUNNING\n2 2_2 COMPLETED\n'`, []string{"3", "2_2"}, map[string]string{"3": "RUNNING", "2_2": "COMPLETED"}, ""},
		{"one unknown of several", `printf '12 12 RUNNING\n'`, []string{"12", "99"}, map[string]string{"12": "RUNNING"}, ""},
		{"the only job unknown", `echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1`, []string{"99"}, map[string]string{}, ""},
		{"controller down", `echo 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2; exit 1`, []string{"12"}, nil, "Unable to contact slurm controller"},
		{"hangs", `sleep 30`, []string{"12"}, nil, "did not answer within"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fakeCommand(t, dir, "squeue", tc.squeue)
			c := Commands{Dir: dir, Timeout: time.Second}
			got, err := c.States(context.Background(), tc.jobs)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("States = %v, %v; want an error saying %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("States = %v; want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("States[%s] = %q; want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestStatesArguments(t *testing.T) {
	dir := t.TempDir()
	args := filepath.Join(dir, "args")
	fakeCommand(t, dir, "squeue", `printf '%s\n' "$@" > `+args)
	if _, err := (Commands{Dir: dir}).States(context.Background(), []string{"1", "2_3"}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(args)
	want := "--noheader\n--states=all\n--format=%A %i %T\n--jobs=1,2_3\n"
	if string(got) != want {
		t.Errorf("squeue got arguments %q; want %q", got, want)
	}
}

func TestStatesMissingCommand(t *testing.T) {
	_, err := (Commands{Dir: t.TempDir()}).States(context.Background(), []string{"1"})
	if err == nil || !strings.Contains(err.Error(), "squeue") {
		t.Errorf("States without squeue = %v; want an error naming it", err)
	}
}

func TestActive(t *testing.T) {
	for _, st := range []string{"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "SOMETHING_NEW"} {
		if !Active(st) {
			t.Errorf("Active(%s) = false", st)
		}
	}
	for _, st := range []string{"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"} {
		if Active(st) {
			t.Errorf("Active(%s) = true", st)
		}
	}
}

func TestSubmit(t *testing.T) {
	dir := t.TempDir()
	args := filepath.Join(dir, "args")
	fakeCommand(t, dir, "sbatch", `printf '%s\n' "$@" > `+args+`; echo '4242;cluster1'`)
	id, err := (Commands{Dir: dir}).Submit(context.Background(), []string{"--time=1:00", "job.sh"})
	if err != nil || id != "4242" {
		t.Fatalf("Submit = %q, %v; want 4242", id, err)
	}
	got, _ := os.ReadFile(args)
	if want := "--parsable\n--hold\n--time=1:00\njob.sh\n"; string(got) != want {
		t.Errorf("sbatch got %q; want %q", got, want)
	}
}
