#!/usr/bin/env bash
# The tour of tapis-agent on a built-in fake Tapis tenant, following the
# README's set-up: no account, no network. Run it with `make demo` (which
# builds bin/ first); TAPIS_AGENT_BIN names another directory of binaries.
# Every command is shown before its output. Colour only on a terminal,
# and never with NO_COLOR set.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${TAPIS_AGENT_BIN:-$PWD/bin}
export PATH="$bin:$PATH"

bold= dim= off=
if [ -t 1 ] && [ -z "${NO_COLOR+set}" ]; then
  bold=$'\033[1m' dim=$'\033[2m' off=$'\033[0m'
fi

# A throw-away home for everything the agent touches: its socket, config
# and log. Your own agent and config are left alone.
work=$(mktemp -d /tmp/tapis-demo.XXXXXX)
fake_pid=
cleanup() {
  tapis-agent stop -q >/dev/null 2>&1 || true
  if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null || true; wait "$fake_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
unset TAPIS_AGENT_SOCK
export HOME=$work/home XDG_RUNTIME_DIR=$work/run XDG_CONFIG_HOME=$work/home/.config XDG_STATE_HOME=$work/home/.local/state
mkdir -p "$HOME" "$XDG_CONFIG_HOME/tapis-agent"
mkdir -m 0700 "$XDG_RUNTIME_DIR"

step() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
# run shows a command line as typed, then runs it.
run() { printf '%s$ %s%s\n' "$bold" "$*" "$off"; eval "$*"; }
note() { printf '%s%s%s\n' "$dim" "$*" "$off"; }

step "A fake Tapis tenant on loopback: user demo, password demo, access tokens live 15 s"
tapis-fake -tenant demo -user demo:demo -access-ttl 15s >"$work/fake.out" 2>"$work/fake.log" &
fake_pid=$!
for _ in $(seq 100); do [ -s "$work/fake.out" ] && break; sleep 0.05; done
base=$(head -n1 "$work/fake.out")
note "fake tenant at $base; HOME is $HOME for this tour"
cat >"$XDG_CONFIG_HOME/tapis-agent/config.toml" <<TOML
default_tenant = "demo"

[tenants.demo]
base_url = "$base"
username = "demo"
TOML
run 'cat ~/.config/tapis-agent/config.toml'

step "Start the agent, as ~/.bashrc does"
run 'eval "$(tapis-agent start)"'
run 'echo "$TAPIS_AGENT_SOCK"'

step "Log in once (the password is piped here; on a terminal it is asked without echo)"
PASSWORD=demo
run 'echo "$PASSWORD" | tapis-token login --password-stdin'

step "A token: on stdout, nothing else"
run 'tapis-token | cut -c1-40'
note "(cut to 40 characters here)"

step "Give it to curl through a file, never as an argument that other users can read"
run 'curl -sS -H @<(tapis-token -H) "$base/v3/oauth2/userinfo"'
echo

step "A token that stays valid long enough: the agent refreshes first if needed"
run 'tapis-token --min-valid 14s | cut -c1-40'
note "Ask more than the tenant's tokens live, and the error names the fix:"
run 'tapis-token --min-valid 1h || echo "exit code $?"'

step "For programs: JSON, or the environment"
run "tapis-token --json | sed 's/\"access_token\": \"\\(.\\{20\\}\\)[^\"]*\"/\"access_token\": \"\\1…\"/'"
run "tapis-token --env | cut -c1-60"

step "Status"
run 'tapis-token status'

count() { tapis-token status --json | sed -n 's/.*"refresh_count": \([0-9]*\).*/\1/p' | head -n1; }
before=$(count)
step "The agent refreshes the token before it expires, with no command typed (about 10 s)"
for _ in $(seq 300); do
  [ "$(count)" -gt "$before" ] && break
  sleep 0.1
done
note "refreshes: $before before the wait, $(count) now"
run 'tapis-token status'

step "Log out: the tokens are revoked upstream and forgotten"
run 'tapis-token logout'
run 'tapis-token || echo "exit code $? (4: login required)"'

step "Import a token got elsewhere (the Tapis web app, say); it is used until it expires"
run "TOKEN=\$(curl -sS -H 'Content-Type: application/json' -d '{\"username\":\"demo\",\"password\":\"demo\",\"grant_type\":\"password\"}' \"\$base/v3/oauth2/tokens\" | sed -n 's/.*\"access_token\": *\"\\([^\"]*\\)\".*/\\1/p')"
run 'echo "$TOKEN" | tapis-token import demo'
run 'tapis-token status'
run 'tapis-token logout'

step "Stop the agent, as ssh-agent -k does"
run 'eval "$(tapis-agent stop)"'

step "The agent's log (no secret is ever logged)"
run 'cat ~/.local/state/tapis-agent/agent.log'
echo
note "Done: the fake tenant stops now, and $work is removed."
