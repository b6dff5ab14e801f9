#!/usr/bin/env python3
"""A section-8 man page from a program's --help, which is written as one
(NAME, SYNOPSIS, DESCRIPTION, OPTIONS, ... at the margin; items indented
4 with their text indented 8, or "TAG  text" on one line), so the man page
and --help are one text and cannot drift.

    scripts/gen-man-help.py PROGRAM SECTION > PROGRAM.SECTION
"""
import os
import re
import subprocess
import sys

prog, section = sys.argv[1], sys.argv[2]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
version = open(os.path.join(root, "VERSION")).read().strip()
name = os.path.basename(prog)
text = subprocess.run([prog, "--help"], check=True, capture_output=True, text=True).stdout


def esc(s):
    s = s.replace("\\", "\\e").replace("-", "\\-")
    s = "".join(c if ord(c) < 128 else "\\[u%04X]" % ord(c) for c in s)
    return "\\&" + s if s.startswith((".", "'")) else s


def indent(l):
    return len(l) - len(l.lstrip(" "))


out = ['.TH %s %s "" "outpost %s" "System Administration"' % (name.upper(), section, version)]
lines = text.splitlines()
heading = ""
i = 0
while i < len(lines):
    l = lines[i]
    if not l.strip():
        if heading not in ("SYNOPSIS", "EXAMPLES"):
            out.append(".PP")
        i += 1
        continue
    if indent(l) == 0:
        if heading in ("SYNOPSIS", "EXAMPLES"):
            out.append(".fi")
        heading = l.strip()
        out.append(".SH " + heading)
        if heading in ("SYNOPSIS", "EXAMPLES"):
            out.append(".nf")
        i += 1
        continue
    body = l.strip()
    nxt = lines[i + 1] if i + 1 < len(lines) else ""
    # "TAG  text" on one line (SIGNALS, EXIT STATUS): a short tag, two
    # spaces; in running text two spaces follow a full stop instead.
    tagged = re.match(r"^(\S+(?: \S+)*?)\s{2,}(\S.*)$", body) if indent(l) == 4 else None
    if tagged and (heading == "DESCRIPTION" or len(tagged.group(1)) > 24 or tagged.group(1).endswith(".")):
        tagged = None
    if indent(l) == 4 and (tagged or (nxt.strip() and indent(nxt) > 4)):
        # An item: its tag, then its text (the rest of the line and the
        # deeper-indented lines that follow).
        tag, text_ = (tagged.group(1), [tagged.group(2)]) if tagged else (body, [])
        i += 1
        while i < len(lines) and lines[i].strip() and indent(lines[i]) > 4:
            text_.append(lines[i].strip())
            i += 1
        out += [".TP", "\\fB" + esc(tag) + "\\fR"] + [esc(t) for t in text_]
        continue
    if heading in ("SYNOPSIS", "EXAMPLES"):
        out.append(esc(body))
    else:
        out.append(esc(body))
    i += 1
if heading in ("SYNOPSIS", "EXAMPLES"):
    out.append(".fi")
print("\n".join(out))
