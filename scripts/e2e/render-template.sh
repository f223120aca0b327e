#!/bin/bash
# render-template.sh - render a crates/bundle/templates/*.j2 the way opaas-bundle does (minijinja,
# plain `{{ name }}` substitutions only), for tests and for make-test-bundle.sh.
#
# usage: scripts/e2e/render-template.sh [-q] [-o OUT] TEMPLATE KEY=VALUE...
#   Every `{{ KEY }}` token is replaced by VALUE, verbatim (list values such as `requested` and
#   `packages` must already be bash array bodies: 'nginx' 'htop' 'jq'). Writes to stdout or OUT.
# It fails (exit 1) when the template uses a variable that was not given, or any minijinja syntax
# other than plain variables: `{%`, `{#` (beware bash's "${#array[@]}", a minijinja comment
# opener), `{{-`, filters `{{ x | f }}`. Unused KEY=VALUE arguments are noted on stderr (not with -q).
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true   # bash 5.2: '&' in a replacement means the match

out="" quiet=0
while [ $# -gt 0 ]; do
  case $1 in -o) out=$2; shift 2 ;; -q) quiet=1; shift ;; *) break ;; esac
done
[ $# -ge 1 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
tpl_file=$1; shift
tpl=$(cat -- "$tpl_file"; printf x); tpl=${tpl%x}   # keep trailing newlines (keep_trailing_newline)

bad=$(grep -n -e '{%' -e '{#' -- "$tpl_file" || true)
if [ -n "$bad" ]; then
  echo "render-template: $tpl_file uses minijinja block/comment syntax ({% or {#); only {{ var }} is allowed:" >&2
  echo "$bad" >&2
  exit 1
fi

for kv in "$@"; do
  case $kv in *=*) ;; *) echo "render-template: argument '$kv' is not KEY=VALUE" >&2; exit 2 ;; esac
  k=${kv%%=*} v=${kv#*=}
  case $k in ''|*[!A-Za-z0-9_]*) echo "render-template: bad variable name '$k'" >&2; exit 2 ;; esac
  pat="{{ $k }}"
  if [[ $tpl != *"$pat"* ]]; then [ "$quiet" = 1 ] || echo "render-template: note: $k is not used by $tpl_file" >&2; continue; fi
  tpl=${tpl//"$pat"/"$v"}
done

left=$(printf '%s' "$tpl" | grep -o '{{[^}]*}}' | sort -u || true)
if [ -n "$left" ]; then
  echo "render-template: $tpl_file: no value given for:" >&2
  printf '  %s\n' "${left//$'\n'/ }" >&2
  exit 1
fi
if [ -n "$out" ]; then printf '%s' "$tpl" > "$out"; else printf '%s' "$tpl"; fi
