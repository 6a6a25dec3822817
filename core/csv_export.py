"""CSV downloads that a spreadsheet opens as data, never as formulas (OWASP "CSV injection").

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a formula by Excel,
LibreOffice and Google Sheets; such text cells get a leading ``'``, which the spreadsheets read as "text".
Numbers (``-3.5``) are left alone, so negative values stay numbers. Every CSV export writes through here.
"""
import csv
from collections.abc import Iterable

from django.http import HttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    if not cell.startswith(FORMULA_STARTS) or _is_number(cell):
        return cell
    return "'" + cell


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_response(*, filename: str, header: Iterable[str], rows: Iterable[Iterable[str]]) -> HttpResponse:
    """An attachment named ``filename``: the header, then the rows, every cell made spreadsheet-safe."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow([spreadsheet_safe(cell) for cell in header])
    for row in rows:
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return response
