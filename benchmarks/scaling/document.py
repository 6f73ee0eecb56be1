"""The generated sections of a markdown document (docs/scaling.md), between ``<!-- name:begin -->`` and
``<!-- name:end -->`` markers."""
from __future__ import annotations


def replace_section(doc: str, name: str, text: str) -> str:
    """``doc`` with the lines between ``<!-- name:begin -->`` and ``<!-- name:end -->`` replaced by ``text``."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if doc.count(begin) != 1 or doc.count(end) != 1 or doc.index(begin) > doc.index(end):
        raise SystemExit(f"error: the document needs one {begin} ... {end} section")
    head, rest = doc.split(begin)
    return f"{head}{begin}\n{text.strip()}\n{end}{rest.split(end, 1)[1]}"


def generated_section(doc: str, name: str) -> str:
    """The text between the ``name`` markers of ``doc`` (what :func:`replace_section` wrote)."""
    return doc.split(f"<!-- {name}:begin -->\n", 1)[1].split(f"\n<!-- {name}:end -->", 1)[0]
