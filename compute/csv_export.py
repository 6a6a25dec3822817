"""CSV downloads of the tables on the compute pages (the same ``selectors.Table`` the page rendered)."""
import csv
from decimal import Decimal

from django.http import HttpResponse

from compute.selectors import Table
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
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([cell_text(value) for value in row])
    return response
