# bash completion for tapis-token and tapis-agent: subcommands, flags,
# tenant names from the running agent and the config file, and file names
# for --socket and --config.
#
# make install puts this one file where bash-completion loads it on demand,
# as tapis-token and as tapis-agent; or source it from ~/.bashrc.

# _tapis_cur_prev sets the caller's cur and prev to the word being
# completed and the one before it, and empties COMPREPLY.
_tapis_cur_prev() {
  cur=${COMP_WORDS[COMP_CWORD]} prev=
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  # bash splits --flag=value at "=" (COMP_WORDBREAKS).
  if [[ $cur == = ]]; then
    cur=
  elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
    prev=${COMP_WORDS[COMP_CWORD - 2]}
  fi
  COMPREPLY=()
}

# _tapis_token_tenants CMD prints the tenant names the agent holds (asked
# through CMD status --json, bounded to 2 s so a hung agent never hangs the
# shell) and those of the config file, one per line.
_tapis_token_tenants() {
  local cmd=$1
  local cfg=${TAPIS_AGENT_CONFIG:-${XDG_CONFIG_HOME:-$HOME/.config}/tapis-agent/config.toml}
  {
    if command -v timeout >/dev/null 2>&1; then
      timeout 2 "$cmd" status --json 2>/dev/null
    else
      "$cmd" status --json 2>/dev/null
    fi | sed -n 's/^[[:space:]]*"tenant":[[:space:]]*"\([^"]*\)".*/\1/p'
    if [[ -r $cfg ]]; then
      sed -n \
        -e 's/^[[:space:]]*\[[[:space:]]*tenants\.\([A-Za-z0-9_-]*\)[[:space:]]*\].*/\1/p' \
        -e 's/^[[:space:]]*\[[[:space:]]*tenants\."\([^"]*\)"[[:space:]]*\].*/\1/p' "$cfg" 2>/dev/null
    fi
  } | sort -u
}

_tapis_token() {
  local cur prev
  _tapis_cur_prev

  case $prev in
    --min-valid)
      COMPREPLY=($(compgen -W "60s 10m 30m 1h 2h 4h" -- "$cur"))
      return 0 ;;
    --username | -u | --client-id)
      return 0 ;;
    --from-file)
      COMPREPLY=($(compgen -f -- "$cur"))
      return 0 ;;
  esac

  # Find the subcommand (or the tenant of a plain token call) and count the
  # positional words after it, skipping flags and their values.
  local cmd=${COMP_WORDS[0]}
  [[ $cmd == */* && -x $cmd ]] || cmd=tapis-token
  local sub= npos=0 i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    case $w in
      --min-valid | --username | -u | --client-id | --from-file | --job | --until | --file)
        [[ -z $sub ]] && sub=token # a flag first: a token call
        ((i++))
        [[ ${COMP_WORDS[i]} == = ]] && ((i++))
        continue ;;
      --)
        # exec's command follows: complete it as a command line.
        [[ $sub == exec ]] && { COMPREPLY=($(compgen -c -- "$cur")); return 0; }
        [[ -z $sub ]] && sub=token
        continue ;;
      -* | =)
        [[ -z $sub ]] && sub=token
        continue ;;
    esac
    if [[ -z $sub ]]; then
      case $w in
        login | logout | status | claims | import | exec | lease | sbatch | version | help) sub=$w ;;
        *) sub=token npos=1 ;; # a tenant name
      esac
    else
      ((npos++))
    fi
  done

  local flags= words=
  case $sub in
    "" | token)
      flags="--min-valid -H --header --curl-config --json --env --csh --sh"
      [[ -z $sub ]] && flags+=" --help --version" words="login logout status claims import exec lease sbatch version help" ;;
    exec) flags="--min-valid --" ;;
    login) flags="--username --password-stdin --browser --device --token-stdin --client-id --client-key-stdin" ;;
    import) flags="--refresh-token --client-id --client-key-stdin --from-env --from-file" ;;
    status) flags="--json" ;;
    lease) flags="--job --until --file --min-valid --cancel" ;;
    sbatch) flags="--min-valid --file" ;;
    logout | claims) ;;
    *) return 0 ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    return 0
  fi
  case $sub in
    "" | token | login | logout | claims | import | exec | lease | sbatch)
      if ((npos == 0)); then
        words+=" $(_tapis_token_tenants "$cmd")"
      fi ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  return 0
}

complete -F _tapis_token tapis-token

_tapis_agent() {
  local cur prev
  _tapis_cur_prev

  case $prev in
    --socket | -socket | --config | -config)
      compopt -o filenames 2>/dev/null
      COMPREPLY=($(compgen -f -- "$cur"))
      return 0 ;;
    --log-level | -log-level)
      COMPREPLY=($(compgen -W "debug info warn error" -- "$cur"))
      return 0 ;;
  esac

  local sub= i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      serve | start | stop | forward | version | help) sub=${COMP_WORDS[i]}; break ;;
    esac
  done

  case $sub in
    "")
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "--help --version" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "serve start stop forward version help" -- "$cur"))
      fi ;;
    serve) COMPREPLY=($(compgen -W "--socket --config --log-level" -- "$cur")) ;;
    start) COMPREPLY=($(compgen -W "--socket --config --log-level -c -s -q" -- "$cur")) ;;
    stop) COMPREPLY=($(compgen -W "--socket -c -s -q" -- "$cur")) ;;
    forward)
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "--socket --remote-socket" -- "$cur"))
      else
        COMPREPLY=($(compgen -A hostname -- "$cur"))
      fi ;;
  esac
  return 0
}

complete -F _tapis_agent tapis-agent
