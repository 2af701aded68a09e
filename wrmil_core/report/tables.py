"""Markdown tables of the reports: the one cell format of a figure and the one table layout
(the report's sections, the writer-fold report)."""

from __future__ import annotations


def fmt(v: float | None, digits: int = 3) -> str:
    """A number for a table cell; None -> 'n/a'."""
    return "n/a" if v is None else f"{v:.{digits}f}"


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    """A Markdown table: the header, its rule, one line per row of cells."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows])


__all__ = ["fmt", "markdown_table"]
