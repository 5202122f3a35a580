#!/usr/bin/env bash
# The tour of tapis-agent on a built-in fake Tapis tenant: no account, no
# network. Run it with `make demo` (which builds bin/ first).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/bin
export PATH="$bin:$PATH"

work=$(mktemp -d /tmp/tapis-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "A fake Tapis tenant on loopback: user demo/demo, access tokens live 15 s"
tapis-fake -tenant demo -user demo:demo -access-ttl 15s >"$work/fake.out" 2>"$work/fake.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/fake.out" ] && break; sleep 0.05; done
base=$(head -n1 "$work/fake.out")
echo "fake tenant at $base"

cat >"$work/config.toml" <<TOML
default_tenant = "demo"

[tenants.demo]
base_url = "$base"
username = "demo"
TOML
echo "config:"; sed 's/^/  /' "$work/config.toml"

export TAPIS_AGENT_SOCK=$work/sock/agent.sock
step "The agent, on a throw-away socket"
tapis-agent serve --config "$work/config.toml" --log-level info 2>"$work/agent.log" &
pids+=($!)
for _ in $(seq 100); do [ -S "$TAPIS_AGENT_SOCK" ] && break; sleep 0.05; done
echo "agent listening on $TAPIS_AGENT_SOCK"

step "Log in (the password comes from stdin here; interactively it is prompted without echo)"
echo "demo" | show tapis-token login demo --password-stdin

step "A token, as curl would use it"
echo '$ tapis-token'
tapis-token | cut -c1-60 | sed 's/$/…  (shortened here)/'
echo '$ curl -H @<(tapis-token -H) '"$base/v3/oauth2/userinfo"
curl -s -H @<(tapis-token -H) "$base/v3/oauth2/userinfo"

step "Its claims"
show tapis-token claims

step "Status"
show tapis-token status
count() { tapis-token status --json | sed -n 's/.*"refresh_count": \([0-9]*\).*/\1/p' | head -n1; }
before=$(count)

step "Waiting for the proactive refresh (at about 2/3 of the 15 s lifetime)"
for _ in $(seq 300); do
  [ "$(count)" -gt "$before" ] && break
  sleep 0.1
done
after=$(count)
echo "refresh_count went from $before to $after, with no command typed"
show tapis-token status

step "The agent's log (no secret is ever logged)"
sed 's/^/  /' "$work/agent.log"

step "Log out: tokens revoked upstream and forgotten"
show tapis-token logout demo
set +e
tapis-token; echo "exit code $? (4: login required)"
set -e
echo
echo "Done: everything stops now, and $work is removed."
