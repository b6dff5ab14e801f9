#!/usr/bin/env python3
"""outpost.conf(5) from the schema: docs/man/outpost.conf.5.in (the prose)
with its @REFERENCE@ line replaced by `outpostd --config-reference` (the
Markdown of docs/config.md's reference) turned into roff, so the man page
cannot drift from the keys the daemon accepts.

    scripts/gen-man-conf.py [OUTPOSTD] > outpost.conf.5
"""
import os
import re
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
outpostd = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "build/outpostd")
version = open(os.path.join(root, "VERSION")).read().strip()
template = open(os.path.join(root, "docs/man/outpost.conf.5.in")).read()
ref = subprocess.run([outpostd, "--config-reference"], check=True, capture_output=True, text=True).stdout


def inline(s):
    """Markdown inline text to roff: `code` in bold, links as their text."""
    s = s.replace("\\|", "|").replace("\\", "\\e")
    s = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", s)
    parts = s.split("`")
    out = "".join(p if i % 2 == 0 else "\\fB" + p + "\\fR" for i, p in enumerate(parts))
    out = out.replace("-", "\\-")
    return "".join(c if ord(c) < 128 else "\\[u%04X]" % ord(c) for c in out)


def line(s):
    return "\\&" + s if s.startswith((".", "'")) else s


def cells(row):
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


out = []
for l in ref.splitlines():
    if l.startswith("### "):
        out.append(".SS " + l[4:])
    elif l.startswith("| key |") or l.startswith("|---") or not l.strip():
        continue
    elif l.startswith("|"):
        key, typ, default, descr = cells(l)
        out += [".TP", line("%s (%s; default: %s)" % (inline(key), inline(typ), inline(default))),
                line(inline(descr))]
    else:
        out += [".PP", line(inline(l))]

sys.stdout.write(template.replace("@VERSION@", version).replace("@REFERENCE@\n", "\n".join(out) + "\n"))
