#!/usr/bin/env python3
"""Checks every relative link in every tracked Markdown file (`make docs-links`).

A link must name a file or directory that git tracks inside this repository
(so it resolves in a fresh clone and on GitHub), and a `#anchor` into a
Markdown file, or into the file itself, must match one of its headings'
GitHub-style slugs (or an explicit id/name in HTML). Checked: inline links
and images `[text](dest)`, reference definitions `[label]: dest`, and
`href`/`src` in HTML tags. Ignored: links with a scheme (http:, https:,
mailto:, ...) or protocol-relative `//host`, and anything inside fenced or
indented code blocks and inline code spans.

Usage: scripts/check-links.py [FILE.md ...]   (default: every tracked *.md)
Exit status 1 if any link is broken; each is printed as file:line: reason.
Standard library only.
"""
from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
LIST_ITEM = re.compile(r"^ {0,3}(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)")
REF_DEF = re.compile(r"^ {0,3}\[((?:[^\]\\]|\\.)+)\]:[ \t]*(<[^>\n]*>|\S+)")
HTML_ATTR = re.compile(r"<[a-zA-Z][^>]*?\s(?:href|src)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')", re.S)
HTML_ID = re.compile(r"<[a-zA-Z][^>]*?\s(?:id|name)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')", re.S)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def tracked() -> set[str]:
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True)
    return {p for p in out.stdout.decode().split("\0") if p}


def strip_code_spans(line: str) -> str:
    """Blanks out inline code (a run of n backticks up to the next run of
    exactly n), keeping the line's length so columns stay meaningful."""
    out, i = [], 0
    while i < len(line):
        if line[i] == "`":
            j = i
            while j < len(line) and line[j] == "`":
                j += 1
            ticks = line[i:j]
            close = re.compile(r"(?<!`)" + ticks + r"(?!`)")
            m = close.search(line, j)
            if m:
                out.append(" " * (m.end() - i))
                i = m.end()
                continue
            out.append(ticks)
            i = j
            continue
        out.append(line[i])
        i += 1
    return "".join(out)


def prose_lines(text: str) -> list[tuple[int, str, str]]:
    """(line number, line, line with inline code blanked out) for every line
    outside fenced and indented code blocks. An indented line counts as code
    only after a blank line and outside a list (in a list it continues an
    item)."""
    result: list[tuple[int, str, str]] = []
    fence: str | None = None
    prev_blank, in_list, in_indented_code = True, False, False
    for n, line in enumerate(text.splitlines(), 1):
        if fence:
            stripped = line.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                fence = None
            prev_blank = False
            continue
        m = FENCE.match(line)
        if m:
            fence = m.group(1)
            continue
        blank = not line.strip()
        indented = line.startswith("    ") or line.startswith("\t")
        if in_indented_code and (indented or blank):
            continue
        in_indented_code = False
        if indented and prev_blank and not in_list and not blank:
            in_indented_code = True
            continue
        if not blank and not indented:
            in_list = bool(LIST_ITEM.match(line)) or (in_list and not prev_blank)
        prev_blank = blank
        result.append((n, line, strip_code_spans(line)))
    return result


def inline_destinations(line: str) -> list[str]:
    """Destinations of `[text](dest "title")` and `![alt](dest)` on one line,
    with nested brackets in the text and balanced parentheses in dest."""
    found = []
    i = 0
    while True:
        i = line.find("](", i)
        if i < 0:
            return found
        # Is there an opening bracket for this one (so it is a link)?
        depth, j = 0, i - 1
        while j >= 0:
            if line[j] == "]" and (j == 0 or line[j - 1] != "\\"):
                depth += 1
            elif line[j] == "[" and (j == 0 or line[j - 1] != "\\"):
                if depth == 0:
                    break
                depth -= 1
            j -= 1
        k = i + 2
        if j < 0:
            i = k
            continue
        while k < len(line) and line[k] in " \t":
            k += 1
        if k < len(line) and line[k] == "<":
            end = line.find(">", k)
            if end > 0:
                found.append(line[k + 1:end])
            i = k
            continue
        depth, start = 0, k
        while k < len(line):
            c = line[k]
            if c == "\\":
                k += 2
                continue
            if c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    break
                depth -= 1
            elif c in " \t":
                break
            k += 1
        if k > start:
            found.append(line[start:k])
        i = k


def heading_text(raw: str) -> str:
    """The text GitHub renders for a heading: links become their text,
    images their alt, HTML tags and emphasis/code markers go."""
    s = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", raw)
    s = re.sub(r"!?\[([^\]]*)\]\[[^\]]*\]", r"\1", s)
    s = re.sub(r"<[^>]+>", "", s)
    s = s.replace("`", "")
    s = re.sub(r"(\*+|(?<!\w)_+|_+(?!\w))", "", s)
    return s.strip()


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case; letters, digits, marks, `_`, `-`
    and spaces kept, everything else dropped; each space becomes `-`."""
    kept = [c for c in text.lower()
            if c in " -_" or unicodedata.category(c)[0] in ("L", "N", "M")]
    return "".join(kept).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a Markdown file offers: heading slugs (repeats get -1,
    -2, ... as on GitHub) and explicit HTML id/name attributes."""
    seen: dict[str, int] = {}
    result: set[str] = set()
    lines = prose_lines(text)

    def add(raw: str) -> None:
        base = slug(heading_text(raw))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")

    prev: tuple[int, str] | None = None
    for n, line, prose in lines:
        m = ATX.match(line)
        if m:
            add(m.group(2) or "")
        elif prev and SETEXT.match(line) and prev[0] == n - 1 and prev[1].strip() \
                and not ATX.match(prev[1]) and not LIST_ITEM.match(prev[1]):
            # "text\n---" is a heading; a lone "---" after a blank line is a rule.
            add(prev[1].strip())
        for m in HTML_ID.finditer(prose):
            result.add(m.group(1) if m.group(1) is not None else m.group(2))
        prev = (n, line)
    return result


def check_file(md: Path, files: set[str], dirs: set[str], cache: dict[Path, set[str]]) -> list[str]:
    rel_md = md.relative_to(ROOT).as_posix()
    text = md.read_text(encoding="utf-8")
    problems = []
    for n, _, line in prose_lines(text):
        dests = inline_destinations(line)
        m = REF_DEF.match(line)
        if m:
            dests.append(m.group(2).strip("<>"))
        dests += [a if a is not None else b for a, b in HTML_ATTR.findall(line)]
        for dest in dests:
            why = check_link(md, dest, files, dirs, cache)
            if why:
                problems.append(f"{rel_md}:{n}: ({dest}) {why}")
    return problems


def check_link(md: Path, dest: str, files: set[str], dirs: set[str], cache: dict[Path, set[str]]) -> str | None:
    dest = dest.strip()
    if not dest or SCHEME.match(dest) or dest.startswith("//"):
        return None
    path_part, _, fragment = dest.partition("#")
    path_part = unquote(path_part.split("?", 1)[0])
    fragment = unquote(fragment)
    if path_part:
        # A leading / is the repository root, as on GitHub.
        base = ROOT if path_part.startswith("/") else md.parent
        target = (base / path_part.lstrip("/")).resolve()
        try:
            rel = target.relative_to(ROOT).as_posix()
        except ValueError:
            return "points outside the repository: it cannot resolve in a clone or on GitHub"
        rel = "" if rel == "." else rel
        if rel not in files and rel not in dirs:
            exists = target.exists()
            return ("exists here but is not tracked by git, so a clone does not have it" if exists
                    else "no such file or directory")
    else:
        target = md
    if fragment and (path_part == "" or target.suffix.lower() in (".md", ".markdown")) and target.is_file():
        if target not in cache:
            cache[target] = anchors(target.read_text(encoding="utf-8"))
        if fragment not in cache[target]:
            close = sorted(a for a in cache[target] if fragment.lower() in a or a in fragment.lower())[:3]
            hint = f" (similar: {', '.join('#' + c for c in close)})" if close else ""
            return f"no heading with anchor #{fragment} in {target.relative_to(ROOT).as_posix()}{hint}"
    return None


def main(argv: list[str]) -> int:
    files = tracked()
    dirs = {""}
    for f in files:
        parts = f.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    if argv:
        mds = [Path(a).resolve() for a in argv]
    else:
        mds = [ROOT / f for f in sorted(files) if f.lower().endswith(".md")]
    cache: dict[Path, set[str]] = {}
    problems = []
    for md in mds:
        if md.is_file():
            problems += check_file(md, files, dirs, cache)
    for p in problems:
        print(p)
    print(f"docs-links: {len(mds)} Markdown files, {len(problems)} broken relative links",
          file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
