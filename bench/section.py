"""Puts a section into BENCHMARKS.md: replaces the text between its markers
(`<!-- NAME:begin -->` ... `<!-- NAME:end -->`, which the section itself holds) or, the first
time, appends it.

    python3 bench/section.py BENCHMARKS.md NAME "$section"
"""
import re
import sys

path, name, section = sys.argv[1], sys.argv[2], sys.argv[3]
begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
text = open(path).read()
if begin in text:
    text = re.sub(re.escape(begin) + ".*" + re.escape(end), lambda _: section, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
