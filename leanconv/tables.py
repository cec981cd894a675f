"""Tables as text, Markdown or CSV: the one formatter every report and command uses.

``format_table(header, rows, "text")`` pads columns with two spaces between them;
``"md"`` writes a GitHub Markdown table (a ``|`` inside a cell is escaped); ``"csv"`` goes
through the ``csv`` module, so commas, quotes and newlines in a cell are quoted correctly.
A ``None`` cell is ``-`` in text and Markdown and empty in CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from leanconv._validate import check_choice

TABLE_FORMATS = ("text", "md", "csv")


def _cell(value: object, fmt: str) -> str:
    if value is None:
        return "" if fmt == "csv" else "-"
    text = str(value)
    return text.replace("|", "\\|").replace("\n", " ") if fmt == "md" else text


def format_table(header: Sequence[object], rows: Iterable[Sequence[object]],
                 fmt: str = "text") -> str:
    """``header`` and ``rows`` (each as long as ``header``) as one string in ``fmt``."""
    check_choice("format_table", "fmt", fmt, TABLE_FORMATS)
    cells = [[_cell(c, fmt) for c in header]]
    for number, row in enumerate(rows):
        row = list(row)
        if len(row) != len(header):
            raise ValueError(f"format_table: row {number} has {len(row)} cells, the header "
                             f"{len(header)}: {row!r}")
        cells.append([_cell(c, fmt) for c in row])
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(cells)
        return buffer.getvalue().rstrip("\n")
    if fmt == "md":
        lines = ["| " + " | ".join(row) + " |" for row in cells]
        lines.insert(1, "|" + "---|" * len(header))
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in cells)


def records_table(records: Iterable[dict[str, object]], columns: Sequence[str],
                  fmt: str = "csv") -> str:
    """Dict records as a table of ``columns`` (a missing key is a ``None`` cell)."""
    return format_table(columns, ([r.get(c) for c in columns] for r in records), fmt)
