#!/usr/bin/env python3
"""tools/convert-outcomes stopped while it writes its outputs: SIGTERM,
SIGINT and SIGHUP leave no temporary behind (OUT/*.tmp.PID stayed there
before) and the previous outputs intact, with a non-zero exit; the
temporaries of a run killed by SIGKILL are removed by the next run into the
same folder, those of a live process kept.

No timing: the input table is a named pipe, so the converter waits in open()
until the test writes it, and by then its pid names the temporaries; the
test puts a named pipe at OUT/outcomes.jsonl.tmp.PID, and opening its read
end returns exactly when the converter opened it to write (its catalog
temporary already written). The outcomes text is larger than a pipe holds,
so the converter then blocks in write() until the signal comes; the test
reads the pipe only after sending it."""
import csv
import glob
import os
import signal
import subprocess
import sys
import tempfile

from rtrtest import SRC, check, finish

CONVERT = os.path.join(SRC, "tools", "convert-outcomes")
HEADER = ["query", "text", "model", "strategy", "correct"]


def table(n):
    """A long table of n queries x 2 models (about 130 bytes of outcomes
    JSON each: 4000 give ~0.5 MB, far past a 64 KiB pipe)."""
    return [HEADER] + [
        [f"q{i}", f"What is {i} plus {i}? Answer with a number.", m, "cot", str((i + k) % 2)]
        for i in range(n) for k, m in enumerate(("m1", "m2"))]


def write_table(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def temporaries(out):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(out, "*.tmp.*")))


def stopped_while_writing(tmp, out, sig):
    """Run the converter into out and send sig while it writes the outcomes
    temporary; its exit status and stderr."""
    src = os.path.join(tmp, f"in-{sig}.csv")
    os.mkfifo(src)
    p = subprocess.Popen([sys.executable, CONVERT, "long", src, "--out", out],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    fifo = os.path.join(out, f"outcomes.jsonl.tmp.{p.pid}")
    os.mkfifo(fifo)
    write_table(src, table(4000))  # returns once the converter opened and read it
    rd = os.open(fifo, os.O_RDONLY)  # returns once the converter opened it to write
    p.send_signal(sig)
    while os.read(rd, 1 << 16):  # drain: a stopped writer may still flush on close
        pass
    os.close(rd)
    err = p.communicate()[1]
    return p.returncode, err


def main():
    tmp = tempfile.mkdtemp(prefix="rtr_badconvert_")
    out = os.path.join(tmp, "out")
    good = os.path.join(tmp, "good.csv")
    write_table(good, table(3))
    r = subprocess.run([sys.executable, CONVERT, "long", good, "--out", out], capture_output=True, text=True)
    check(r.returncode == 0, "the first conversion: " + r.stderr)
    before = {n: open(os.path.join(out, n), "rb").read() for n in ("catalog.json", "outcomes.jsonl")}

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        rc, err = stopped_while_writing(tmp, out, sig)
        check(rc != 0 and "Traceback" not in err, f"{sig.name}: non-zero exit, no traceback: {rc} {err.strip()}")
        check(temporaries(out) == [], f"{sig.name}: no temporary left behind: {temporaries(out)}")
        after = {n: open(os.path.join(out, n), "rb").read() for n in before}
        check(after == before, f"{sig.name}: the previous outputs intact")

    # SIGKILL cannot be caught: its temporaries stay until the next run
    rc, _ = stopped_while_writing(tmp, out, signal.SIGKILL)
    left = temporaries(out)
    check(rc == -signal.SIGKILL and len(left) == 2, f"SIGKILL leaves both temporaries: {rc} {left}")
    live = os.path.join(out, f"catalog.json.tmp.{os.getpid()}")  # a live process's: another run's, kept
    open(live, "w").close()
    r = subprocess.run([sys.executable, CONVERT, "long", good, "--out", out], capture_output=True, text=True)
    check(r.returncode == 0 and temporaries(out) == [os.path.basename(live)],
          f"the next run removes the dead run's temporaries, keeps a live one's: {temporaries(out)} {r.stderr}")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
    finish()
