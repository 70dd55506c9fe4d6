"""Every link in the README and the docs resolves in a clone of the
repository: markdown links and HTML hrefs to files (and to their headings,
by GitHub's anchor rule), names of other markdown files ("DATA.md", found
beside the file, at the root or in docs/), and repository paths written in
the text (`src/route/route.c`, `tests/test_x.py`). Nothing may point at
../shared/design/ (the team's design notes, which a clone does not have).
Web links are not fetched (no network in CI); they are listed on stderr.
The report's own links: tests/test_report_render.py."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rtrtest import SRC, check, finish  # noqa: E402

root = os.path.abspath(SRC)


def tracked_markdown():
    """The repository's markdown files: git's list in a clone, else a walk
    that leaves out build folders and data/models (downloaded encoders)."""
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "*.md"], capture_output=True, text=True, check=True)
        files = [os.path.join(root, f) for f in out.stdout.split()]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for dirpath, dirnames, names in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "build")) and
                           os.path.relpath(os.path.join(dirpath, d), root) != os.path.join("data", "models")]
            files += [os.path.join(dirpath, n) for n in names if n.endswith(".md")]
    return [f for f in files if os.path.exists(f)]


def slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading.strip()).lower()
    return re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", text))


def anchors(path):
    out, seen = set(), {}
    in_code = False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        m = re.match(r"#{1,6}\s+(.*)", line)
        if m:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            out.add(s if n == 0 else f"{s}-{n}")
            seen[s] = n + 1
    return out


# A repository path in prose: a top-level folder, then a name; globs and
# placeholders (X, N, <name>, *) are patterns, not files. data/ holds what
# runs write, so paths under it are not expected in a clone.
PATH_RE = re.compile(r"(?<![\w./-])((?:src|include|tests|tools|bench|kernels|docs)/[\w./-]*[\w/])")
PLACEHOLDER = re.compile(r"(^|/)(X|N|NAME|<[^>]*>)(\.|/|$)|\*|\{|\bX\.")

web = set()
for md in tracked_markdown():
    rel = os.path.relpath(md, root)
    text = open(md, encoding="utf-8").read()
    here = os.path.dirname(md)
    check("../shared/design" not in text, f"{rel}: points at ../shared/design/, which a clone does not have")
    targets = re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text) + re.findall(r'href="([^"]+)"', text)
    targets += re.findall(r"^\[[^\]]+\]:\s*(\S+)", text, re.M)
    for t in targets:
        if re.match(r"[a-z]+:", t):
            web.add(t)
            continue
        path, _, frag = t.partition("#")
        dest = os.path.normpath(os.path.join(here, path)) if path else md
        inside = os.path.commonpath([root, dest]) == root
        check(inside and os.path.exists(dest), f"{rel}: link {t} does not resolve in a clone")
        if frag and inside and dest.endswith(".md") and os.path.exists(dest):
            check(frag in anchors(dest), f"{rel}: link {t}: no heading #{frag} in {os.path.relpath(dest, root)}")
    # Names of markdown files and repository paths mentioned in the prose
    # (fenced blocks are commands, with metavariables such as SUMMARY.md).
    prose = re.sub(r"\]\([^)]*\)", "]", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S))
    for name in set(re.findall(r"(?<![\w./-])([A-Za-z][\w-]*\.md)\b", prose)):
        found = any(os.path.exists(os.path.join(d, name)) for d in (here, root, os.path.join(root, "docs")))
        check(found, f"{rel}: mentions {name}, which is not beside it, at the root or in docs/")
    for p in set(PATH_RE.findall(prose)):
        if PLACEHOLDER.search(p):
            continue
        candidates = [os.path.join(root, p), os.path.join(here, p), os.path.join(root, p) + ".c"]  # built from X.c
        check(any(os.path.exists(c) for c in candidates), f"{rel}: mentions {p}, which is not in the repository")
if web:
    print("web links (not fetched):", ", ".join(sorted(web)), file=sys.stderr)
finish()
