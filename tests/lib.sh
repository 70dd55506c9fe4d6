# Shared by the shell tests (sourced, never run by ctest): the rtr binary, a
# scratch directory removed on exit (and made current), checks counted into
# the closing "N passed, N failed, N skipped" line.
set -u
RTR=${RTR:-rtr}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0 skipped=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
# A part of the test that cannot run here: said, and counted as skipped.
skip_part() { skipped=$((skipped + 1)); echo "skip: $*" >&2; }
# Print the closing line; exit 1 when any check failed, else 77 (ctest's
# SKIP) when a part was skipped, so a skipped part never reports as a pass;
# a test that ran no check at all fails (it proved nothing).
finish() {
  local also=""
  [ "$skipped" -eq 0 ] || also=", $skipped skipped"
  echo "$passed passed, $failed failed$also"
  [ "$failed" -eq 0 ] || exit 1
  [ "$skipped" -eq 0 ] || exit 77
  [ "$passed" -gt 0 ] || { echo "FAIL: no check ran" >&2; exit 1; }
  exit 0
}
