package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// buildBaselines builds the programs of bench/baseline into dir and
// returns their paths.
func buildBaselines(dir string) (hello, rawToken, nullAgent string, err error) {
	const pkg = "github.com/tapis-agent/tapis-agent/bench/baseline/"
	if err := goBuild("", dir, "-s -w", pkg+"hello", pkg+"rawtoken", pkg+"nullagent"); err != nil {
		return "", "", "", err
	}
	return filepath.Join(dir, "hello"), filepath.Join(dir, "rawtoken"), filepath.Join(dir, "nullagent"), nil
}

// buildAt builds tapis-agent and tapis-token as of git revision rev into
// dir, from a detached worktree of rev that it removes afterwards.
func buildAt(rev, dir string) error {
	tmp, err := os.MkdirTemp("", "tab-rev")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "src")
	if out, err := exec.Command("git", "worktree", "add", "--detach", src, rev).CombinedOutput(); err != nil {
		return fmt.Errorf("git worktree add %s: %v\n%s", rev, err, out)
	}
	defer func() {
		if out, err := exec.Command("git", "worktree", "remove", "--force", src).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "benchtable: git worktree remove %s: %v\n%s", src, err, out)
		}
	}()
	return goBuild(src, dir, "-s -w -X main.version="+rev, "./cmd/tapis-agent", "./cmd/tapis-token")
}

// goBuild builds pkgs, from working directory wd ("" for this one), into
// dir the way make build builds tapis-token: static, trimmed, stripped,
// with the linker flags ldflags.
func goBuild(wd, dir, ldflags string, pkgs ...string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	args := append([]string{"build", "-trimpath", "-ldflags", ldflags, "-o", dir + "/"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = wd
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %v: %v\n%s", pkgs, err, out)
	}
	return nil
}
