"""Text output of the CLI: aligned tables, key/value blocks, progress bars, numbers."""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MAX_CELL = 60


def cell(value: Any) -> str:
    """A value as a short table cell: '-' for none, compact numbers, JSON for structures, one line."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number(value)
    if isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"))
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def number(value: float | int | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Rows under headers, columns padded to their widest cell; '(none)' when there are no rows."""
    text_rows = [[cell(value) for value in row] for row in rows]
    if not text_rows:
        return "(none)"
    widths = [max(len(header), *(len(row[i]) for row in text_rows)) for i, header in enumerate(headers)]
    lines = ["  ".join(header.upper().ljust(width) for header, width in zip(headers, widths)).rstrip()]
    lines += ["  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in text_rows]
    return "\n".join(lines)


def fields(pairs: Mapping[str, Any]) -> str:
    """``name: value`` lines with the names aligned; structures as compact JSON."""
    width = max(len(name) for name in pairs)
    lines = []
    for name, value in pairs.items():
        text = json.dumps(value) if isinstance(value, (dict, list)) else ("-" if value in (None, "") else str(value))
        lines.append(f"{name + ':':<{width + 1}} {text}")
    return "\n".join(lines)


def bar(fraction: float | None, width: int = 24) -> str:
    fraction = min(max(fraction or 0.0, 0.0), 1.0)
    filled = round(fraction * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def seed_stats(stats: Mapping[str, Any] | None) -> str:
    if not stats:
        return "-"
    spread = f" ± {number(stats['std'])}" if stats.get("std") is not None else ""
    return f"{number(stats['mean'])}{spread} (n={stats['n']})"


def difference(diff: Mapping[str, Any] | None) -> str:
    if not diff:
        return "-"
    text = f"{diff['relative_percent']:+.2f}%"
    if diff.get("relative_ci95_half_width") is not None:
        text += f" ± {diff['relative_ci95_half_width']:.2f}%"
    if diff.get("seeds", 2) < 2:
        text += " (one seed)"
    return text
