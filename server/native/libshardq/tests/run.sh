#!/bin/sh
# Run test binaries: exit 0 passes, 77 skips, anything else fails.
failed=0
for t in "$@"; do
    "$t"
    rc=$?
    case $rc in
        0) echo "PASS $t" ;;
        77) echo "SKIP $t" ;;
        *) echo "FAIL $t (exit $rc)"; failed=1 ;;
    esac
done
exit $failed
