"""CSV downloads of the tables on the compute pages (the same ``selectors.Table`` the page rendered)."""
from decimal import Decimal

from django.http import HttpResponse

from compute.selectors import Table
from core.csv_export import csv_response
from ideas.models import Area, Idea


def cell_text(value) -> str:
    """How a table cell reads outside the page: areas by slug, ideas by key, no value as empty."""
    if value is None:
        return ""
    if isinstance(value, Area):
        return value.slug
    if isinstance(value, Idea):
        return value.key
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def table_response(table: Table, *, filename: str) -> HttpResponse:
    rows = ([cell_text(value) for value in row] for row in table.rows)
    return csv_response(filename=filename, header=table.columns, rows=rows)
