#!/usr/bin/env bash
# Command-line option parser, sourced by scripts AFTER they set their
# configurable variables to default values:
#
#   nj=4
#   use_gpu=false
#   . utils/parse_options.sh    # must be sourced, so "shift" hits the caller
#
# "--some-opt VALUE" and "--some-opt=VALUE" set $some_opt (dashes become
# underscores); the variable must already exist.  A variable whose current
# value is true/false only accepts true/false.  "--config FILE" applies the
# "--opt=value" lines of FILE at that point, so later options override it.
# "--help"/"-h" prints $help_message (if set) plus the options and their
# current values, then exits 0.  Parsing stops at the first non-option
# argument or after "--"; the rest stays in "$@".
#
# Everything here runs in the caller's shell: helper names start with __po_
# and are removed at the end.  No shell options are changed.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  echo "Usage: . utils/parse_options.sh   (source it after setting option defaults)" >&2
  echo "e.g.: nj=4; . utils/parse_options.sh; echo \"\$nj\"" >&2
  [ "${1:-}" = --help ] && exit 0
  exit 1
fi

__po_die() {
  echo "$0: $*" >&2
  exit 1
}

# __po_set OPTION VALUE: assign VALUE to the variable behind --OPTION.
# Locals carry the __po_ prefix so they can never shadow an option variable.
__po_set() {
  local __po_n=${1//-/_}
  [[ $__po_n =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || __po_die "invalid option name --$1"
  [[ $__po_n != __po_* ]] || __po_die "unknown option --$1"
  [ -n "${!__po_n+set}" ] || __po_die "unknown option --$1"
  case "${!__po_n}" in
    true|false)
      case "$2" in
        true|false) ;;
        *) __po_die "option --$1 is boolean: expected true or false, got '$2'" ;;
      esac ;;
  esac
  printf -v "$__po_n" '%s' "$2"
}

# __po_config FILE: apply "--opt=value" lines; '#' starts a comment when it
# begins a line or follows whitespace.
__po_config() {
  local __po_l
  [ -f "$1" ] || __po_die "config file $1 does not exist"
  while IFS= read -r __po_l || [ -n "$__po_l" ]; do
    __po_l=$(printf '%s' "$__po_l" | sed -e 's/^[[:space:]]*#.*//' \
      -e 's/[[:space:]]#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')
    [ -z "$__po_l" ] && continue
    [[ $__po_l == --?*=* ]] ||
      __po_die "bad line in config file $1: '$__po_l' (expected --option=value)"
    __po_l=${__po_l#--}
    __po_set "${__po_l%%=*}" "${__po_l#*=}"
  done < "$1"
}

# __po_help: help text, then every "name=value" variable set at top level in
# the calling script before it sources this file, with its current value.
__po_help() {
  local __po_h=help_message __po_n
  # Indirect access: help_message belongs to the caller and may be unset.
  [ -n "${!__po_h+set}" ] && printf '%s\n' "${!__po_h}" >&2
  [ -f "$0" ] || return 0
  echo "Options (current values):" >&2
  awk '/^[[:space:]]*(\.|source)[[:space:]].*parse_options\.sh/ { exit }
       /^[a-z_][a-z0-9_]*=/ { sub(/=.*/, ""); if (!seen[$0]++) print }' "$0" |
    while read -r __po_n; do
      [ "$__po_n" = help_message ] && continue
      [ -n "${!__po_n+set}" ] || continue
      printf '  --%s %s\n' "${__po_n//_/-}" "'${!__po_n}'" >&2
    done
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h) __po_help; exit 0 ;;
    --) shift; break ;;
    --config=*) __po_config "${1#--config=}"; shift ;;
    --config)
      [ $# -ge 2 ] || __po_die "option --config needs a value"
      __po_config "$2"; shift 2 ;;
    --?*=*) __po_v=${1#--}; __po_set "${__po_v%%=*}" "${__po_v#*=}"; shift ;;
    --?*)
      [ $# -ge 2 ] || __po_die "option $1 needs a value"
      __po_set "${1#--}" "$2"; shift 2 ;;
    *) break ;;
  esac
done

unset -f __po_die __po_set __po_config __po_help
unset -v __po_v
true
