package e2e

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestInstallFromArchive installs as a new user does, on a machine without
// Go: the release archive of this platform (as make dist packs it),
// unpacked, ./install.sh, the line it prints added to ~/.bashrc of a home
// made from Debian's skeleton files, then login shells (bash -l, as ssh
// opens one) that log in to tapis-fake and print a token through the
// installed binaries. The uninstaller must then leave the home and the
// runtime directory as they were.
func TestInstallFromArchive(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"/etc/skel/.profile", "/etc/skel/.bashrc"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("Debian's skeleton file %s: %v (package bash)", f, err)
		}
	}
	root := t.TempDir()
	dir := unpackArchive(t, root)

	home := filepath.Join(root, "home")
	run := filepath.Join(root, "run") // $XDG_RUNTIME_DIR, as pam_systemd makes it
	for _, d := range []string{home, run} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{".profile", ".bashrc", ".bash_logout"} {
		b, err := os.ReadFile(filepath.Join("/etc/skel", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := startFakeBinary(t, "-tenant", "demo", "-user", "demo:demo")
	writeFile(t, filepath.Join(home, ".config", "tapis-agent", "config.toml"),
		"default_tenant = \"demo\"\n\n[tenants.demo]\nbase_url = \""+base+"\"\nusername = \"demo\"\n")
	env := []string{
		"HOME=" + home, "USER=tester", "LOGNAME=tester", "SHELL=/bin/bash",
		"PATH=/usr/bin:/bin", // no Go
		"XDG_RUNTIME_DIR=" + run, "TERM=dumb", "LANG=C.UTF-8",
		"HISTFILE=" + filepath.Join(root, "history"),
	}
	sh := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { // an agent left by a failure
		cmd := exec.Command(filepath.Join(dir, "bin", "tapis-agent"), "stop", "-q")
		cmd.Env = env
		_ = cmd.Run()
	})
	before := tree(t, home) + tree(t, run)

	out := sh("sh", "./install.sh")
	bin := filepath.Join(home, ".local", "bin")
	lines := map[string]string{} // shell: its start-up line
	for l := range strings.Lines(out) {
		for shell, file := range map[string]string{"bash": "bash, in ~/.bashrc:", "zsh": "zsh, in ~/.zshrc:", "tcsh": "csh or tcsh, in ~/.cshrc:"} {
			if _, after, ok := strings.Cut(l, file); ok {
				lines[shell] = strings.TrimSpace(after)
			}
		}
	}
	line := lines["bash"]
	if want := `eval "$('` + bin + `/tapis-agent' start -q)"`; line != want {
		t.Fatalf("install.sh gives the bash line %q; want %q\n%s", line, want, out)
	}
	for _, f := range []string{"tapis-agent", "tapis-token"} {
		if fi, err := os.Stat(filepath.Join(bin, f)); err != nil || fi.Mode().Perm() != 0o755 {
			t.Fatalf("installed %s: %v, %v; want mode 0755", f, fi, err)
		}
	}
	unit, err := os.ReadFile(filepath.Join(home, ".config", "systemd", "user", "tapis-agent.service"))
	if err != nil {
		t.Fatalf("systemd user unit: %v", err)
	}
	if !strings.Contains(string(unit), "ExecStart="+bin+"/tapis-agent serve\n") {
		t.Errorf("installed unit does not start %s/tapis-agent:\n%s", bin, unit)
	}
	f, err := os.OpenFile(filepath.Join(home, ".bashrc"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("\n" + line + "\n")
	f.Close()

	// A login shell, interactive as ssh opens one: ~/.profile reads
	// ~/.bashrc before it puts ~/.local/bin on PATH, so the line works
	// because it names the binary in full.
	out = sh("bash", "-l", "-i", "-c",
		`if command -v go; then echo "go is on PATH" >&2; exit 97; fi
		echo "which=$(command -v tapis-token)"
		echo demo | tapis-token login --password-stdin
		echo "token=$(tapis-token)"`)
	if !strings.Contains(out, "which="+bin+"/tapis-token\n") {
		t.Errorf("the login shell's tapis-token is not the installed one:\n%s", out)
	}
	first := tokenLine(t, out)
	// The next login finds the agent the first one started.
	out = sh("bash", "-l", "-i", "-c", `echo "sock=$TAPIS_AGENT_SOCK"; echo "token=$(tapis-token demo)"`)
	if !strings.Contains(out, "sock="+filepath.Join(run, "tapis-agent", "agent.sock")+"\n") {
		t.Errorf("the login shell's TAPIS_AGENT_SOCK is not the default socket:\n%s", out)
	}
	if tok := tokenLine(t, out); tok != first {
		t.Errorf("second login shell's token differs from the first one's: a second agent?\n%s", out)
	}

	// zsh's and csh's lines find the same agent.
	for _, shell := range []string{"zsh", "tcsh"} {
		if _, err := exec.LookPath(shell); err != nil {
			t.Fatalf("%s is not installed (apt-get install %s): its start-up line is untested", shell, shell)
		}
		out = sh(shell, "-c", lines[shell]+"; echo sock=$TAPIS_AGENT_SOCK")
		if !strings.Contains(out, "sock="+filepath.Join(run, "tapis-agent", "agent.sock")+"\n") {
			t.Errorf("%s line %q does not point at the agent:\n%s", shell, lines[shell], out)
		}
	}

	out = sh("sh", filepath.Join(home, ".local", "share", "tapis-agent", "install.sh"), "--uninstall")
	if !strings.Contains(out, "your config stays in") {
		t.Errorf("uninstall does not say that the config stays:\n%s", out)
	}
	// The config is the user's, and stays; the line in ~/.bashrc too.
	skel, err := os.ReadFile("/etc/skel/.bashrc")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".bashrc"), skel, 0o644); err != nil {
		t.Fatal(err)
	}
	if after := tree(t, home) + tree(t, run); after != before {
		t.Errorf("uninstall left the home and runtime directory changed.\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// With a PREFIX outside the home, the user units go to
	// PREFIX/lib/systemd/user, where systemd looks for /usr/local, and
	// nothing lands in the home.
	prefix := filepath.Join(root, "usr-local")
	homeBefore := tree(t, home)
	sh("sh", "./install.sh", "--prefix", prefix)
	unit, err = os.ReadFile(filepath.Join(prefix, "lib", "systemd", "user", "tapis-agent.service"))
	if err != nil {
		t.Fatalf("unit with a system prefix: %v", err)
	}
	if !strings.Contains(string(unit), "ExecStart="+prefix+"/bin/tapis-agent serve\n") {
		t.Errorf("unit with a system prefix does not start %s/bin/tapis-agent:\n%s", prefix, unit)
	}
	if after := tree(t, home); after != homeBefore {
		t.Errorf("install with a system prefix wrote into the home:\n%s", after)
	}
	sh("sh", "./install.sh", "--uninstall", "--prefix", prefix)
	if _, err := os.Stat(prefix); !os.IsNotExist(err) {
		t.Errorf("uninstall with a system prefix left %s: %s", prefix, tree(t, prefix))
	}
}

// unpackArchive packs this platform's release archive with contrib/dist.sh
// (as make dist does, without the wheel) and unpacks it into root with
// tar, returning its directory.
func unpackArchive(t *testing.T, root string) string {
	t.Helper()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	cmd := exec.Command("bash", "../contrib/dist.sh", "--version", "0.0.0", "--out", filepath.Join(root, "dist"), platform)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("contrib/dist.sh %s: %v\n%s", platform, err, out)
	}
	name := "tapis-agent_0.0.0_" + runtime.GOOS + "_" + runtime.GOARCH
	if out, err := exec.Command("tar", "-xzf", filepath.Join(root, "dist", name+".tar.gz"), "-C", root).CombinedOutput(); err != nil {
		t.Fatalf("unpacking %s: %v\n%s", name, err, out)
	}
	return filepath.Join(root, name)
}

// tokenLine returns the token of the line "token=…" in out, which must be
// a JWT.
func tokenLine(t *testing.T, out string) string {
	t.Helper()
	for l := range strings.Lines(out) {
		if tok, ok := strings.CutPrefix(strings.TrimSpace(l), "token="); ok {
			if strings.Count(tok, ".") != 2 {
				t.Fatalf("token = %q; want a JWT:\n%s", tok, out)
			}
			return tok
		}
	}
	t.Fatalf("no token line in the login shell's output:\n%s", out)
	return ""
}

// tree lists every file and directory under dir, with its type and mode,
// one a line, in name order.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		lines = append(lines, fi.Mode().String()+" "+p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
