"""The one not-found convention of every app's selectors."""
from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from django.http import Http404

M = TypeVar("M", bound=Model)


def get_or_404(rows: QuerySet[M], missing: str, **lookup: Any) -> M:
    """The row of ``rows`` matching ``lookup``, else ``Http404(missing)`` ("no study 7": what and which).

    ``rows`` is already narrowed to what the user may see, so a hidden object answers exactly like one that does
    not exist, before any other check reveals it.
    """
    try:
        return rows.get(**lookup)
    except rows.model.DoesNotExist:
        raise Http404(missing) from None
