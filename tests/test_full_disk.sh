#!/usr/bin/env bash
# A full disk under every writing stage: ingest, encode, train, score, route
# --out (CSV and HDF5), sweep, eval, report (tests/faults.sh has the stages
# and the reference run). Each stage runs with its folder on a tmpfs (in a
# private mount namespace, `unshare -rm`) that holds the state before the
# stage and only part of what the stage writes, at three sizes: it must exit
# 1 with a message, never crash or die by a signal, and every output under
# its final name must be absent, as before the stage, or whole (never
# partial). Where this machine cannot mount a tmpfs, the test says so and
# reports SKIP.
. "$(dirname "$0")/faults.sh"
unshare -rm sh -c 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d" && rmdir "$d"' 2>/dev/null ||
  { echo "SKIP: cannot mount a tmpfs in a private namespace (unshare -rm) here"; exit 77; }

for s in $stages; do
  pre=$(du -sk "ref-before-$s" | cut -f1) post=$(du -sk "ref-after-$s" | cut -f1)
  grow=$((post - pre))
  [ $grow -gt 8 ] || grow=8 # KiB the stage adds
  for pct in 10 50 90; do
    w=disk-$s-$pct
    mkdir "$w" "$w.out"
    room=$((grow * pct / 100))
    # in the namespace: mount, copy the state in, shrink the tmpfs to what
    # the state uses plus $room KiB, run the stage, copy what is left out
    unshare -rm bash -c '
      mount -t tmpfs -o size=$((4 * $3 + 4096))k tmpfs "$2" || exit 99
      cp -a "$4"/. "$2"/ || exit 98
      used=$(df -k --output=used "$2" | tail -1)
      mount -o remount,size=$((used + $1))k "$2" || exit 97
      echo $((used + $1)) > "$6/size"
      (cd "$2" && exec "$5" $7 > "$6/log" 2>&1); echo $? > "$6/rc"
      mkdir "$6/state" && cp -a "$2"/. "$6/state"/' _ \
      "$room" "$w" "$pre" "$PWD/ref-before-$s" "$RTR" "$PWD/$w.out" "$(stage_cmd "$s")"
    size=$(cat "$w.out/size" 2>/dev/null || echo "?")
    rc=$(cat "$w.out/rc" 2>/dev/null || echo none)
    if [ "$rc" = none ]; then
      bad "$s: the tmpfs could not be set up ($room KiB free)"
    elif [ "$rc" = 0 ]; then
      check_outputs "$w.out/state" "$s" "disk of ${size}k (it fitted)" final
    else
      check "$s on a full disk (${size}k) exits 1, not $rc: $(tail -2 "$w.out/log")" test "$rc" = 1
      check "$s on a full disk says why: $(tail -1 "$w.out/log")" grep -qi "error" "$w.out/log"
      check_outputs "$w.out/state" "$s" "disk of ${size}k full"
    fi
    rm -rf "$w" "$w.out"
  done
done

finish
