#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# check-layers.sh [SRC] — fail when a file under SRC (default src/) includes
# a kiln header from a higher layer. Dependencies point down only
# (../shared/docs/architecture.md, README's code map); modules in one layer
# are peers and may include each other. A new src/ folder must be given a
# layer here, or the check fails.
#
# Prints one line per offending include (file:line: what and why) and exits
# 1, or prints "layers ok (N includes)" and exits 0.
set -eu
src=${1:-src}

layer() {
	case $1 in
	base) echo 0 ;;
	os | net | db) echo 1 ;;
	spec) echo 2 ;;
	provision | image | vm | check | store | publish) echo 3 ;;
	pipeline) echo 4 ;;
	cli | service) echo 5 ;;
	*) echo "" ;;
	esac
}

bad=0 n=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
grep -rn --include='*.[ch]' '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[a-z_]*/' "$src" >"$tmp" || true
while IFS= read -r hit; do
	file=${hit%%:*}
	rest=${hit#*:}
	line=${rest%%:*}
	from=${file#"$src"/}
	from=${from%%/*}
	to=$(printf '%s\n' "$rest" | sed 's/.*include[[:space:]]*"\([a-z_]*\)\/.*/\1/')
	n=$((n + 1))
	lf=$(layer "$from")
	lt=$(layer "$to")
	if [ -z "$lf" ]; then
		echo "$file:$line: folder '$from' has no layer in $0"
		bad=1
	elif [ -z "$lt" ]; then
		echo "$file:$line: includes '$to/', a folder with no layer in $0"
		bad=1
	elif [ "$lt" -gt "$lf" ]; then
		echo "$file:$line: $from (layer $lf) includes $to/ (layer $lt): dependencies must point down"
		bad=1
	fi
done <"$tmp"
[ "$bad" -eq 0 ] || exit 1
echo "layers ok ($n includes)"
