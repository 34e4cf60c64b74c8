# bash completion for tumblerd(8) and tumbler(1). Installed by the Debian package as
# /usr/share/bash-completion/completions/tumblerd (and tumbler); from npm: source this file.

# Sets cur, prev and cmd (the first word that is not an option nor an option's value); $1 is a
# pattern of the options that take a value.
_tumbler_words() {
  local i
  COMPREPLY=()
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  cmd=
  for ((i = 1; i < COMP_CWORD; i++)); do
    # shellcheck disable=SC2053
    if [[ ${COMP_WORDS[i]} == $1 ]]; then ((i++))
    elif [[ ${COMP_WORDS[i]} != -* ]]; then cmd=${COMP_WORDS[i]}; break
    fi
  done
}

_tumblerd() {
  local cur prev cmd
  _tumbler_words '@(-c|--config|--log-level|--fleet|--address|--interface|--timezone|--host)'
  case $prev in
    -c|--config|--fleet) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --interface) COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur")); return ;;
    --address|--timezone|--host) return ;;
    --log-level) COMPREPLY=($(compgen -W 'error warn info verbose debug' -- "$cur")); return ;;
  esac
  case $cmd in
    '') COMPREPLY=($(compgen -W '-c --config --check --dry-run --log-level -V --version -h --help doctor demo scan convert status keygen pubkey otp-uri revoke' -- "$cur")) ;;
    scan) COMPREPLY=($(compgen -W '-c --config --json --address --interface --this-host --timezone -h --help' -- "$cur") $(compgen -f -- "$cur")) ;;
    doctor) COMPREPLY=($(compgen -W '-c --config -h --help' -- "$cur")) ;;
    demo) COMPREPLY=($(compgen -W '-h --help' -- "$cur")) ;;
    convert) COMPREPLY=($(compgen -f -- "$cur")) ;;
    status) COMPREPLY=($(compgen -W '-c --config --json -h --help' -- "$cur")) ;;
    keygen) COMPREPLY=($(compgen -W '-c --config --fleet -h --help' -- "$cur")) ;;
    pubkey) COMPREPLY=($(compgen -W '-c --config -h --help' -- "$cur")) ;;
    otp-uri) COMPREPLY=($(compgen -W '-c --config --host --otpauth -h --help' -- "$cur")) ;;
    revoke) COMPREPLY=($(compgen -W '-c --config --forget -h --help' -- "$cur")) ;;
  esac
}

_tumbler() {
  local cur prev cmd
  _tumbler_words '@(-o|--open|--secret-file|--from|--at|--copies|-f|--family|-d|--delay|-i|--identity|--label|--declare|--key|-C|--comment|--file|-w|--wait)'
  case $prev in
    --secret-file|-i|--identity|--file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --label|--declare|--key|-C|--comment|-w|--wait|--copies) return ;;
    -f|--family) COMPREPLY=($(compgen -W '4 6' -- "$cur")); return ;;
    -o|--open) COMPREPLY=($(compgen -W 'tumbler://' -- "$cur")); return ;;
    --from|--at|-d|--delay) return ;;
  esac
  case $cmd in
    '') COMPREPLY=($(compgen -W '-o --open --secret-file --from --at --copies -f --family -V --version -h --help open knock keygen proxy' -- "$cur")) ;;
    open) COMPREPLY=($(compgen -W '--secret-file --from --at --copies -i --identity --passphrase --label --declare -f --family -h --help tumbler:// tumbler2://' -- "$cur")) ;;
    keygen) COMPREPLY=($(compgen -W '-f --file -C --comment --passphrase --key --label -h --help' -- "$cur")) ;;
    proxy) COMPREPLY=($(compgen -W '-i --identity --passphrase -w --wait -h --help' -- "$cur")) ;;
    knock) COMPREPLY=($(compgen -W '-d --delay -f --family -h --help' -- "$cur") $(compgen -A hostname -- "$cur")) ;;
  esac
}

complete -F _tumblerd tumblerd
complete -F _tumbler tumbler
