#!/usr/bin/env python3
"""Run one command and print one JSON line of what it cost: wall seconds,
CPU seconds (user + system) and peak resident memory (the child's own,
from wait4), and the bytes it read
and wrote (this process's /proc/self/io before and after: Linux adds a
reaped child's I/O counters to its parent's). rchar/wchar count every byte
through read/write calls (page cache included); read_bytes/write_bytes what
reached the storage layer.

    bench_scale_measure.py LABEL [--out DIR_OR_FILE] -- COMMAND...

--out adds out_bytes: the size of what the command wrote there."""
import json
import os
import sys
import time


def io():
    with open("/proc/self/io") as f:
        return {k: int(v) for k, v in (line.split(": ") for line in f)}


def size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main():
    label, out, i = sys.argv[1], None, 2
    if sys.argv[i] == "--out":
        out, i = sys.argv[i + 1], i + 2
    assert sys.argv[i] == "--"
    cmd = sys.argv[i + 1:]
    before, t0 = io(), time.monotonic()
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.execvp(cmd[0], cmd)
    _, status, ru = os.wait4(pid, 0)
    wall, after = time.monotonic() - t0, io()
    rec = {"label": label, "rc": os.waitstatus_to_exitcode(status), "wall_s": round(wall, 3),
           "cpu_s": round(ru.ru_utime + ru.ru_stime, 3), "peak_rss_mb": round(ru.ru_maxrss / 1024, 1)}
    for k in ("rchar", "wchar", "read_bytes", "write_bytes"):
        rec[k] = after[k] - before[k]
    if out:
        rec["out_bytes"] = size(out) if os.path.exists(out) else 0
    print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
