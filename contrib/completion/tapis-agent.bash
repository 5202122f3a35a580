# bash completion for tapis-agent: subcommands and their flags, file names
# for --socket and --config.
#
# Install as ~/.local/share/bash-completion/completions/tapis-agent (loaded
# on demand by bash-completion), or source it from ~/.bashrc.

_tapis_agent() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  # bash splits --flag=value at "=" (COMP_WORDBREAKS).
  if [[ $cur == = ]]; then
    cur=
  elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
    prev=${COMP_WORDS[COMP_CWORD - 2]}
  fi
  COMPREPLY=()

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
      serve | start | stop | version | help) sub=${COMP_WORDS[i]}; break ;;
    esac
  done

  case $sub in
    "")
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "--help --version" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "serve start stop version help" -- "$cur"))
      fi ;;
    serve) COMPREPLY=($(compgen -W "--socket --config --log-level" -- "$cur")) ;;
    start) COMPREPLY=($(compgen -W "--socket --config --log-level -c -s -q" -- "$cur")) ;;
    stop) COMPREPLY=($(compgen -W "--socket -c -s -q" -- "$cur")) ;;
  esac
  return 0
}

complete -F _tapis_agent tapis-agent
