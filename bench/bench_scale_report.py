#!/usr/bin/env python3
"""The scale benchmark's results (bench_scale.sh) as the markdown tables of
docs/SCALE.md: per N and stage, before / after, wall and CPU seconds, peak
RSS, bytes written (wchar) and the size of the stage's output, with the
after/before ratio of wall time and of bytes written; then peak RSS per
stage across the sizes run (what grows with N). A run without a before
build gives its own figures (and bytes read) the same way.

    bench/bench_scale_report.py WORK_DIR/results.jsonl"""
import json
import sys

STAGES = ("ingest", "embed", "train", "score", "route", "sweep", "eval")


def mb(b):
    return f"{b / 1e6:,.0f}" if b >= 1e6 else f"{b / 1e6:.2f}"


def ratio(a, b):
    return f"{a / b:.2f}" if b else "-"


def after_only(runs, sizes):
    """A run without RTR_BEFORE: this tree's figures per N and stage, then
    peak RSS across the sizes."""
    print("| queries | stage | wall s | CPU s | peak RSS MB | read MB | written MB | out MB |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        for stage in STAGES:
            a = runs.get(f"{n} after {stage}")
            if a:
                bad = "" if a["rc"] == 0 else f" (exit {a['rc']})"
                print(f"| {n:,} | {stage}{bad} | {a['wall_s']:.1f} | {a['cpu_s']:.1f} | {a['peak_rss_mb']:,.1f} "
                      f"| {mb(a['rchar'])} | {mb(a['wchar'])} | {mb(a.get('out_bytes', 0))} |")
    print()
    print("| stage | " + " | ".join(f"peak RSS MB at {n:,}" for n in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for stage in STAGES:
        cells = [f"{runs[f'{n} after {stage}']['peak_rss_mb']:,.1f}" if f"{n} after {stage}" in runs else "-"
                 for n in sizes]
        print(f"| {stage} | " + " | ".join(cells) + " |")
    for n in sizes:
        lo, hi = runs.get(f"{n} start load"), runs.get(f"{n} end load")
        if lo and hi:
            print(f"\n{n:,} queries: load average {lo['loadavg']} at the start, {hi['loadavg']} at the end")


def main():
    recs = [json.loads(line) for line in open(sys.argv[1]) if line.strip() and not line.startswith("#")]
    runs = {r["label"]: r for r in recs}  # the last run of each label
    sizes = sorted({int(label.split()[0]) for label in runs})
    if not any(" before " in label for label in runs):
        after_only(runs, sizes)
        return
    print("| queries | stage | wall s before / after (ratio) | CPU s before / after | peak RSS MB before / after "
          "| written MB before / after (ratio) | output MB before / after |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n in sizes:
        for stage in STAGES:
            b, a = runs.get(f"{n} before {stage}"), runs.get(f"{n} after {stage}")
            if not b or not a:
                continue
            bad = "" if a["rc"] == 0 and b["rc"] == 0 else f" (exit {b['rc']} / {a['rc']})"
            print(f"| {n:,} | {stage}{bad} | {b['wall_s']:.1f} / {a['wall_s']:.1f} ({ratio(a['wall_s'], b['wall_s'])}) "
                  f"| {b['cpu_s']:.1f} / {a['cpu_s']:.1f} | {b['peak_rss_mb']:,.0f} / {a['peak_rss_mb']:,.0f} "
                  f"| {mb(b['wchar'])} / {mb(a['wchar'])} ({ratio(a['wchar'], b['wchar'])}) "
                  f"| {mb(b.get('out_bytes', 0))} / {mb(a.get('out_bytes', 0))} |")
    if len(sizes) > 1:
        print()
        print("| stage | " + " | ".join(f"peak RSS MB at {n:,}: before / after" for n in sizes) + " |")
        print("|---|" + "---:|" * len(sizes))
        for stage in STAGES:
            cells = []
            for n in sizes:
                b, a = runs.get(f"{n} before {stage}"), runs.get(f"{n} after {stage}")
                cells.append(f"{b['peak_rss_mb']:,.0f} / {a['peak_rss_mb']:,.0f}" if a and b else "-")
            print(f"| {stage} | " + " | ".join(cells) + " |")
    for n in sizes:
        p, lo, hi = runs.get(f"{n} paths"), runs.get(f"{n} start load"), runs.get(f"{n} end load")
        if p:
            print(f"\n{n:,} queries: sweep path {p['before_points']:,} / {p['after_points']:,} points (before / after)"
                  + (f"; load average {lo['loadavg']} at the start, {hi['loadavg']} at the end" if lo and hi else ""))


if __name__ == "__main__":
    main()
