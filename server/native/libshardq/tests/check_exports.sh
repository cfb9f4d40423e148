#!/bin/sh
# The library exports exactly the functions listed in the version script.
lib=$1
map=$2
got=$(nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sed 's/@.*//' | sort)
want=$(grep -E '^[[:space:]]+shardq_[a-z0-9_]+;' "$map" | tr -d ' ;' | sort)
if [ "$got" != "$want" ]; then
    echo "FAIL exports differ from $map:"
    printf 'exported:\n%s\nlisted:\n%s\n' "$got" "$want"
    exit 1
fi
echo "PASS exports ($(echo "$got" | wc -l) symbols)"
