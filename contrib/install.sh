#!/bin/sh
# install.sh — install tapis-agent and tapis-token for this user, without
# root and without Go, from a release archive (where this script sits at
# the top, beside bin/ and contrib/) or from a source tree (make install).
#
#   ./install.sh [--prefix DIR] [--bindir DIR] [--unitdir DIR]
#   ./install.sh --uninstall [--prefix DIR]
#
# It copies the binaries into PREFIX/bin (PREFIX defaults to ~/.local), the
# bash completion into PREFIX/share/bash-completion/completions, and where
# the system has them the units that keep the agent running: on Linux the
# systemd user units (into ~/.config/systemd/user, or PREFIX/lib/systemd/user
# for a PREFIX outside your home), on macOS the LaunchAgent (into
# ~/Library/LaunchAgents, or /Library/LaunchAgents outside your home). It
# records what it made in PREFIX/share/tapis-agent/manifest, keeps a copy
# of itself there for --uninstall, and prints the line to add to your
# shell's start-up file.
#
# --uninstall stops the agent (its sessions are lost), disables and removes
# the units, removes every file and directory the install made, and the
# agent's log and lock files. Your config (~/.config/tapis-agent) stays.
set -eu

prog=install.sh
label=com.github.tapis-agent.tapis-agent

die() {
	echo "$prog: $*" >&2
	exit 1
}

usage() {
	cat <<'EOF'
usage: ./install.sh [--prefix DIR] [--bindir DIR] [--unitdir DIR]
       ./install.sh --uninstall [--prefix DIR]

  --prefix DIR    install under DIR (default: ~/.local)
  --bindir DIR    the binaries' directory (default: PREFIX/bin)
  --unitdir DIR   the systemd user units' or the LaunchAgent's directory
                  (default: ~/.config/systemd/user or ~/Library/LaunchAgents;
                  PREFIX/lib/systemd/user or /Library/LaunchAgents when
                  PREFIX is outside your home)
  --uninstall     remove what an install under PREFIX made
EOF
}

# q quotes $1 for sh and csh: in single quotes, each ' written as '\''.
q() {
	printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# absolute makes the directory $1 absolute, from the current directory.
absolute() {
	case $1 in
	/*) printf '%s' "$1" ;;
	*) printf '%s/%s' "$(pwd)" "$1" ;;
	esac
}

source=$(cd "$(dirname "$0")" && pwd)
binaries=
prefix=
bindir=
unitdir=
uninstall=false
while [ $# -gt 0 ]; do
	case $1 in
	--prefix | --bindir | --unitdir | --source | --binaries)
		[ $# -ge 2 ] || die "$1 needs a directory; see ./install.sh --help"
		case $1 in
		--prefix) prefix=$2 ;;
		--bindir) bindir=$2 ;;
		--unitdir) unitdir=$2 ;;
		--source) source=$2 ;; # a source tree (make install)
		--binaries) binaries=$2 ;;
		esac
		shift 2
		;;
	--uninstall) uninstall=true; shift ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown argument $1; see ./install.sh --help" ;;
	esac
done

[ -n "${HOME:-}" ] || die "HOME is not set"
prefix=$(absolute "${prefix:-$HOME/.local}")
bindir=$(absolute "${bindir:-$prefix/bin}")
datadir=$prefix/share/tapis-agent
manifest=$datadir/manifest
completiondir=$prefix/share/bash-completion/completions
os=$(uname -s)
case $prefix/ in
"$HOME"/*) private=true ;;
*) private=false ;;
esac
if [ -z "$unitdir" ]; then
	case $os:$private in
	Linux:true) unitdir=${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user ;;
	Linux:false) unitdir=$prefix/lib/systemd/user ;;
	Darwin:true) unitdir=$HOME/Library/LaunchAgents ;;
	Darwin:false) unitdir=/Library/LaunchAgents ;;
	esac
fi
unitdir=${unitdir:+$(absolute "$unitdir")}

# The agent's files outside the install: its log and host record (as
# ipc.StateDir), and its socket's directory (as ipc.DefaultSocketPath).
statedir=${XDG_STATE_HOME:-$HOME/.local/state}/tapis-agent
if [ -n "${TAPIS_AGENT_SOCK:-}" ]; then
	sockdir=$(dirname "$TAPIS_AGENT_SOCK")
elif [ -n "${XDG_RUNTIME_DIR:-}" ]; then
	sockdir=$XDG_RUNTIME_DIR/tapis-agent
elif [ "$os" = Darwin ]; then
	sockdir="$HOME/Library/Application Support/tapis-agent"
else
	sockdir=/tmp/tapis-agent-$(id -u)
fi

if $uninstall; then
	[ -f "$manifest" ] || die "no install under $prefix ($manifest is missing); give the --prefix of the install"
	agent=$(sed -n 's|^f \(.*/tapis-agent\)$|\1|p' "$manifest" | head -n 1)
	# Stop whatever keeps the agent running, then the agent.
	if grep -q '/tapis-agent\.socket$' "$manifest" && command -v systemctl >/dev/null 2>&1; then
		systemctl --user disable --now tapis-agent.socket tapis-agent.service >/dev/null 2>&1 || true
	fi
	wants=${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user/sockets.target.wants
	if [ -L "$wants/tapis-agent.socket" ]; then
		rm -f "$wants/tapis-agent.socket"
		rmdir "$wants" 2>/dev/null || true
	fi
	if grep -q "/$label\.plist\$" "$manifest" && command -v launchctl >/dev/null 2>&1; then
		launchctl bootout "gui/$(id -u)/$label" >/dev/null 2>&1 || true
	fi
	if [ -n "$agent" ] && [ -x "$agent" ]; then
		"$agent" stop -q >/dev/null 2>&1 || true
	fi
	# Files first, then the directories the install made, deepest first,
	# each only if it is empty now.
	sed -n 's|^f ||p' "$manifest" | while IFS= read -r f; do rm -f "$f"; done
	rm -f "$statedir/agent.log" "$statedir/agents/$(uname -n)" \
		"$sockdir/agent.sock.lock" "$sockdir/agent.sock.listen.lock"
	for d in "$statedir/agents" "$statedir" "$(dirname "$statedir")" "$sockdir"; do
		rmdir "$d" 2>/dev/null || true
	done
	dirs=$(sed -n 's|^d ||p' "$manifest")
	rm -f "$manifest"
	printf '%s\n' "$dirs" | sed '1!G;h;$!d' | while IFS= read -r d; do
		[ -n "$d" ] && { rmdir "$d" 2>/dev/null || true; }
	done
	echo "$prog: removed tapis-agent from $prefix"
	if [ -d "${XDG_CONFIG_HOME:-$HOME/.config}/tapis-agent" ]; then
		echo "$prog: your config stays in ${XDG_CONFIG_HOME:-$HOME/.config}/tapis-agent; remove it if you no longer want it"
	fi
	exit 0
fi

binaries=$(absolute "${binaries:-$source/bin}")
for f in "$binaries/tapis-agent" "$binaries/tapis-token" "$source/contrib/completion/tapis.bash"; do
	[ -f "$f" ] || die "$f is missing; run this script from an unpacked release archive, or make install from a source tree"
done

# made lists what the install made, one "d DIR" or "f FILE" a line; an
# earlier install's directories stay listed, so that --uninstall removes
# them too.
made=
if [ -f "$manifest" ]; then
	made=$(grep '^d ' "$manifest" || true)
fi
record() {
	made="$made
$1"
}

# makedir makes the directory $1 and its missing parents, private to the
# user when under the home, and records those it made.
makedir() {
	[ -d "$1" ] && return 0
	makedir "$(dirname "$1")"
	mkdir "$1" || die "cannot make $1"
	if $private; then chmod 0700 "$1"; fi
	record "d $1"
}

# put installs the file $1 as $2 with mode $3: written beside it, then
# renamed over it, so that a running binary is replaced, not overwritten.
put() {
	makedir "$(dirname "$2")"
	cp "$1" "$2.new.$$" || die "cannot write $2"
	place "$2" "$3"
}

# fill installs the unit or plist $1 as $2 with @BINDIR@ replaced by the
# binaries' directory, escaped for sed (and, with $3 = xml, for XML).
fill() {
	b=$bindir
	if [ "${3:-}" = xml ]; then
		b=$(printf '%s' "$b" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g')
	fi
	b=$(printf '%s' "$b" | sed 's/[|&\\]/\\&/g')
	makedir "$(dirname "$2")"
	sed "s|@BINDIR@|$b|g" "$1" >"$2.new.$$" || die "cannot write $2"
	place "$2" 0644
}

# place gives $1.new.$$ the mode $2, renames it to $1 and records it.
place() {
	chmod "$2" "$1.new.$$"
	mv -f "$1.new.$$" "$1" || die "cannot write $1"
	record "f $1"
}

put "$binaries/tapis-agent" "$bindir/tapis-agent" 0755
put "$binaries/tapis-token" "$bindir/tapis-token" 0755
put "$source/contrib/completion/tapis.bash" "$completiondir/tapis-agent" 0644
put "$source/contrib/completion/tapis.bash" "$completiondir/tapis-token" 0644
units=
case $os in
Linux)
	if [ -f "$source/contrib/systemd/tapis-agent.service" ]; then
		fill "$source/contrib/systemd/tapis-agent.service" "$unitdir/tapis-agent.service"
		put "$source/contrib/systemd/tapis-agent.socket" "$unitdir/tapis-agent.socket" 0644
		units=systemd
	fi
	;;
Darwin)
	if [ -f "$source/contrib/launchd/$label.plist" ]; then
		fill "$source/contrib/launchd/$label.plist" "$unitdir/$label.plist" xml
		units=launchd
	fi
	;;
esac
self=$0
[ -f "$self" ] || self=$source/install.sh
put "$self" "$datadir/install.sh" 0755
makedir "$datadir"
printf '%s\n' "$made" | sed '/^$/d' | awk '!seen[$0]++' >"$manifest.new.$$"
chmod 0644 "$manifest.new.$$"
mv -f "$manifest.new.$$" "$manifest"

agent=$bindir/tapis-agent
echo "$prog: installed tapis-agent and tapis-token into $bindir"
echo "$prog: bash completion in $completiondir"
case $units in
systemd)
	echo "$prog: systemd user units in $unitdir; to run the agent with systemd:"
	echo "    systemctl --user daemon-reload && systemctl --user enable --now tapis-agent.socket"
	;;
launchd)
	echo "$prog: the LaunchAgent in $unitdir starts the agent at every login; to start it now:"
	echo "    launchctl bootstrap gui/\$(id -u) $(q "$unitdir/$label.plist")"
	;;
esac
cat <<EOF
$prog: to start the agent from your shell instead (no systemd or launchd,
$prog: e.g. on an HPC login node), add this line to your shell's start-up file:
    bash, in ~/.bashrc:        eval "\$($(q "$agent") start -q)"
    zsh, in ~/.zshrc:          eval "\$($(q "$agent") start -q)"
    csh or tcsh, in ~/.cshrc:  eval "\`$(q "$agent") start -q -c\`"
EOF
case :${PATH:-}: in
*:"$bindir":*) ;;
*)
	cat <<EOF
$prog: $bindir is not on your PATH; add it in the same file:
    bash, zsh:    export PATH=$(q "$bindir"):"\$PATH"
    csh, tcsh:    setenv PATH $(q "$bindir"):"\$PATH"
EOF
	;;
esac
echo "$prog: to uninstall: sh $(q "$datadir/install.sh") --uninstall --prefix $(q "$prefix")"
