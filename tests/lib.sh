# Shared by the shell tests (sourced, never run by ctest): the rtr binary, a
# scratch directory removed on exit (and made current), checks counted into
# the closing "N passed, N failed" line.
set -u
RTR=${RTR:-rtr}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
# Print the closing line; exit 1 when any check failed.
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
