"""REST API of the compute app (/api/v1/): parse, call one service or selector, answer.

Service errors map to HTTP in ``core.api``: django ValidationError → 400 keyed by field, PermissionDenied → 403,
ComputeConflict (cycle not open, parent overdrawn, already decided, cycle closed) → 409 with its facts.
"""
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Model, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, mixins, serializers, status
from rest_framework.request import Request as HttpRequest
from rest_framework.response import Response

from compute import selectors, services
from compute.desk import desk_requests
from compute.visibility import visible_compute_areas, visible_requests
from compute.models import Cycle, Pool
from compute.serializers import (
    AllocationTreeSerializer,
    CycleSerializer,
    FiguresQuerySerializer,
    FiguresSerializer,
    PoolSerializer,
    RequestInputSerializer,
    RequestListQuerySerializer,
    RequestSerializer,
    ReviewInputSerializer,
    ReviewOutputSerializer,
    UsageQuerySerializer,
    UsageSerializer,
)
from core import idempotency
from core.api import ApiView
from ideas.models import Idea
from ideas.selectors import parse_idea_key

_ERRORS = {
    400: OpenApiResponse(description="Invalid input; the body names each offending field."),
    403: OpenApiResponse(description="Not allowed for this user (not a reviewer, or reviewing one's own request)."),
    409: OpenApiResponse(description="Not possible in the current state; `detail` says why and what is left."),
}
_NOT_FOUND = OpenApiResponse(description="Unknown id.")


def _lookup(rows: type[Model] | QuerySet, field_name: str, **filters) -> Any:
    """The row (of a model or of the queryset of rows the user may see) or a 400 naming the input field (a bad
    reference in a body is bad input, not a missing page)."""
    rows = rows.objects.all() if isinstance(rows, type) else rows
    row = rows.filter(**filters).first()
    if row is None:
        value = next(iter(filters.values()))
        raise serializers.ValidationError({field_name: f"no {field_name} {value!r}"})
    return row


class CycleListView(ApiView, generics.ListAPIView):
    """Review cycles, newest first, with their phase and schedule."""

    serializer_class = CycleSerializer
    queryset = Cycle.objects.order_by("-start")


class CycleAllocationsView(ApiView):
    """The cycle's allocation tree: org budgets, area grants and idea grants, with usage and remaining hours."""

    serializer_class = AllocationTreeSerializer

    @extend_schema(responses={200: AllocationTreeSerializer, 404: _NOT_FOUND})
    def get(self, request: HttpRequest, pk: int) -> Response:
        cycle = selectors.cycle_get(pk)
        rows = selectors.allocations_for_cycle(cycle, user=request.user)
        return Response(AllocationTreeSerializer({"cycle": cycle.pk, "phase": cycle.phase, "results": rows}).data)


class CycleFiguresView(ApiView):
    """Granted, used, remaining and requested GPU-hours of a cycle for the org, each pool, each area or each
    idea (`level`): the figures every compute page and CSV shows, from the same selector."""

    serializer_class = FiguresSerializer

    @extend_schema(parameters=[FiguresQuerySerializer], responses={200: FiguresSerializer, 400: _ERRORS[400], 404: _NOT_FOUND})
    def get(self, request: HttpRequest, pk: int) -> Response:
        cycle = selectors.cycle_get(pk)
        level = self.parse(FiguresQuerySerializer, request.query_params)["level"]
        rows = selectors.figure_rows(cycle, level=level, user=request.user)
        return Response(FiguresSerializer({"cycle": cycle.pk, "level": level, "results": rows}).data)


class PoolListView(ApiView, generics.ListAPIView):
    """GPU pools, by name."""

    serializer_class = PoolSerializer
    queryset = Pool.objects.order_by("name")


class RequestListView(mixins.ListModelMixin, ApiView):
    serializer_class = RequestSerializer

    def get_queryset(self) -> QuerySet:
        query = self.parse(RequestListQuerySerializer, self.request.query_params)
        cycle = _lookup(Cycle, "cycle", pk=query["cycle"]) if "cycle" in query else selectors.cycle_current()
        if cycle is None:
            raise serializers.ValidationError({"cycle": "there are no cycles yet"})
        user = self.request.user
        return desk_requests(
            cycle, user=user, stage=query.get("stage", ""), status=query["status"], sort=query["sort"],
            area=_lookup(visible_compute_areas(user), "area", slug=query["area"]) if "area" in query else None,
            pool=_lookup(Pool, "pool", name=query["pool"]) if "pool" in query else None,
            requester=_lookup(get_user_model(), "requester", username=query["requester"]) if "requester" in query else None,
        ).prefetch_related("revisions")

    @extend_schema(parameters=[RequestListQuerySerializer], responses={200: RequestSerializer(many=True), 400: _ERRORS[400]})
    def get(self, request: HttpRequest) -> Response:
        """Requests of a cycle (default: the current one) that the caller may see, filtered and sorted like the
        review desk's URL (`area`, `pool`, `stage`, `status`, `requester`, `sort`)."""
        return self.list(request)

    @extend_schema(request=RequestInputSerializer, parameters=[idempotency.PARAMETER],
                   responses={201: RequestSerializer, 200: RequestSerializer, **_ERRORS, **idempotency.RESPONSES})
    @idempotency.idempotent
    def post(self, request: HttpRequest) -> Response:
        """Open a request, or amend the open one for the same cycle, pool and target (200, history kept)."""
        data = self.parse(RequestInputSerializer, request.data)
        areas = visible_compute_areas(request.user)  # a restricted area reads as unknown, as on its pages
        area = _lookup(areas, "area", slug=data["area"])
        idea = None
        if data["idea"]:
            number = parse_idea_key(data["idea"])
            idea = _lookup(Idea.objects.filter(area__in=areas), "idea", number=number if number is not None else -1)
        compute_request, created = services.request_submit(
            requester=request.user,
            cycle=_lookup(Cycle, "cycle", pk=data["cycle"]),
            pool=_lookup(Pool, "pool", name=data["pool"]),
            area=area,
            idea=idea,
            gpu_hours=data["gpu_hours"],
            justification=data["justification"],
            stage=data["stage"],
            evidence_links=data["evidence_links"],
        )
        return Response(RequestSerializer(compute_request).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class RequestDetailView(ApiView):
    serializer_class = RequestSerializer

    @extend_schema(responses={200: RequestSerializer, 404: _NOT_FOUND})
    def get(self, request: HttpRequest, pk: int) -> Response:
        """One compute request with its current amounts and status."""
        return Response(RequestSerializer(generics.get_object_or_404(visible_requests(request.user), pk=pk)).data)


class RequestReviewView(ApiView):
    serializer_class = ReviewInputSerializer

    @extend_schema(request=ReviewInputSerializer, responses={200: ReviewOutputSerializer, **_ERRORS, 404: _NOT_FOUND})
    def post(self, request: HttpRequest, pk: int) -> Response:
        """Approve, trim (with `gpu_hours`) or refuse (with a `comment`) an open request."""
        compute_request = generics.get_object_or_404(visible_requests(request.user), pk=pk)  # 404 before any 400
        data = self.parse(ReviewInputSerializer, request.data)
        review = services.request_review(
            request=compute_request, reviewer=request.user, decision=data["decision"],
            gpu_hours=data["gpu_hours"], comment=data["comment"],
        )
        return Response(ReviewOutputSerializer(review).data)


class UsageView(ApiView):
    serializer_class = UsageSerializer

    @extend_schema(parameters=[UsageQuerySerializer], responses={200: UsageSerializer, **_ERRORS})
    def get(self, request: HttpRequest) -> Response:
        """GPU-hours used in a cycle (default: the current one) per area, idea and pool; `area` narrows to one area."""
        query = self.parse(UsageQuerySerializer, request.query_params)
        cycle = _lookup(Cycle, "cycle", pk=query["cycle"]) if "cycle" in query else selectors.cycle_current()
        if cycle is None:
            raise serializers.ValidationError({"cycle": "there are no cycles yet"})
        area = _lookup(visible_compute_areas(request.user), "area", slug=query["area"]) if "area" in query else None
        rows = selectors.usage_rollup(cycle=cycle, area=area, user=request.user)
        return Response(UsageSerializer({
            "cycle": cycle.pk,
            "area": area.slug if area else None,
            "total_gpu_hours": float(sum(row["gpu_hours"] for row in rows)),
            "results": rows,
        }).data)
