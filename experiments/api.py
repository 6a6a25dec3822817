"""REST API for studies and runs (/api/v1/studies/, /api/v1/runs/): parse, call one service or selector,
answer. Error mapping (here and nowhere else): ValidationError → 400 keyed by field, PermissionDenied →
403, unknown id → 404, ConflictError → 409 listing the conflicts, RunStateConflict → 409, BudgetRefused →
409 with requested, remaining, grant and can_grant_more.
Anyone signed in may read, except restricted areas' studies and runs (404, ``experiments.visibility``);
launching, cancelling and resuming are checked by the services."""
from __future__ import annotations

from typing import Any

import numpy as np
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, mixins, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from experiments import queries, selectors, services
from experiments.budget import BudgetRefused
from experiments.composition import ConflictError
from experiments.downsample import lttb_indices
from experiments.errors import RunStateConflict
from experiments.models import Metric, Run, Study
from experiments.results import FINAL_METRIC, study_results
from experiments.serializers import (
    ConflictResponseSerializer,
    CorpusQuerySerializer,
    CorpusSerializer,
    MetricQuerySerializer,
    MetricSeriesSerializer,
    RunSerializer,
    StateConflictSerializer,
    StudyCreateSerializer,
    StudyDetailSerializer,
    StudyMetricQuerySerializer,
)
from modelzoo.catalogue import CorpusInfo

_ERRORS = {
    400: OpenApiResponse(description="Invalid input; the body names each offending field."),
    403: OpenApiResponse(description="Not allowed for this user."),
    404: OpenApiResponse(description="Unknown id."),
}
_STATE_CONFLICT = {409: OpenApiResponse(StateConflictSerializer, description="The run's state does not allow it.")}


class ExperimentsAPIView(generics.GenericAPIView):
    permission_classes = [IsAuthenticated]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ConflictError):
            body = {"detail": str(exc), "conflicts": [conflict.to_dict() for conflict in exc.conflicts]}
            return Response(body, status=status.HTTP_409_CONFLICT)
        if isinstance(exc, BudgetRefused):
            return Response({"detail": str(exc), **exc.details}, status=status.HTTP_409_CONFLICT)
        if isinstance(exc, RunStateConflict):
            return Response({"detail": str(exc), "status": exc.status}, status=status.HTTP_409_CONFLICT)
        if isinstance(exc, DjangoValidationError):
            detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
            exc = serializers.ValidationError(detail)
        return super().handle_exception(exc)

    def parse(self, serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def study_response(self, study_id: int, code: int = status.HTTP_200_OK, query: Any = None) -> Response:
        """The study (404 first when hidden), its results on ``query``'s ``metric`` (default ``val_loss``)."""
        try:
            study = selectors.study_detail(study_id, user=self.request.user)
        except Study.DoesNotExist:
            raise Http404(f"no study {study_id}") from None
        metric = self.parse(StudyMetricQuerySerializer, query)["metric"] if query is not None else FINAL_METRIC
        if metric != FINAL_METRIC:
            logged = queries.metric_names([run.pk for run in study.runs.all()], "")
            losses = [name for name in logged if "loss" in name]
            if metric not in losses:
                raise DjangoValidationError({"metric": f"study {study.pk} has no loss metric {metric!r}; it has "
                                                       f"{', '.join(losses) or 'none yet'}"})
        serializer = StudyDetailSerializer(study, context={"results": study_results(study, metric)})
        return Response(serializer.data, status=code)

    def run(self) -> Run:
        try:
            return selectors.run_detail(self.kwargs["run_id"], user=self.request.user)
        except Run.DoesNotExist:
            raise Http404(f"no run {self.kwargs['run_id']}") from None


class CorpusListView(mixins.ListModelMixin, ExperimentsAPIView):
    serializer_class = CorpusSerializer

    def get_queryset(self) -> list[CorpusInfo]:
        query = self.parse(CorpusQuerySerializer, self.request.query_params)
        return selectors.corpora_list(kind=query["kind"], origin=query["origin"])

    @extend_schema(parameters=[CorpusQuerySerializer], responses={200: CorpusSerializer(many=True), 400: _ERRORS[400]})
    def get(self, request: Request) -> Response:
        return self.list(request)


class StudyCreateView(ExperimentsAPIView):
    serializer_class = StudyDetailSerializer

    @extend_schema(request=StudyCreateSerializer, responses={
        201: StudyDetailSerializer, **_ERRORS,
        409: OpenApiResponse(ConflictResponseSerializer, description=(
            "Ideas set one key to different values (body: `conflicts`), or the study's estimate exceeds the "
            "remaining grant (body: `requested`, `remaining`, `grant`, `can_grant_more`).")),
    })
    def post(self, request: Request) -> Response:
        study = services.study_launch(user=request.user, **self.parse(StudyCreateSerializer, request.data))
        return self.study_response(study.pk, status.HTTP_201_CREATED)


class StudyDetailView(ExperimentsAPIView):
    serializer_class = StudyDetailSerializer

    @extend_schema(parameters=[StudyMetricQuerySerializer], responses={200: StudyDetailSerializer, **_ERRORS})
    def get(self, request: Request, study_id: int) -> Response:
        return self.study_response(study_id, query=request.query_params)


class RunDetailView(ExperimentsAPIView):
    serializer_class = RunSerializer

    @extend_schema(responses={200: RunSerializer, 404: _ERRORS[404]})
    def get(self, request: Request, run_id: int) -> Response:
        return Response(RunSerializer(self.run()).data)


class RunMetricsView(ExperimentsAPIView):
    serializer_class = MetricSeriesSerializer

    @extend_schema(parameters=[MetricQuerySerializer], responses={200: MetricSeriesSerializer, **_ERRORS})
    def get(self, request: Request, run_id: int) -> Response:
        run = self.run()  # the object check comes first: a hidden run is a 404 whatever the query says
        query = self.parse(MetricQuerySerializer, request.query_params)
        name = query["name"]
        recorded = sorted(set(Metric.objects.filter(run=run).values_list("name", flat=True)))
        if recorded and name not in recorded:
            raise DjangoValidationError({"name": f"run {run.pk} has no metric {name!r}; it has {', '.join(recorded)}"})
        steps, values = queries.metric_arrays([run.pk], name).get(run.pk, (np.array([]), np.array([])))
        count = len(steps)
        if "max_points" in query and count > query["max_points"]:
            keep = lttb_indices(steps.astype(np.float64), values, query["max_points"])
            steps, values = steps[keep], values[keep]
        points = [[int(step), float(value)] for step, value in zip(steps, values)]
        return Response({"run": run.pk, "name": name, "count": count, "points": points})


class RunCancelView(ExperimentsAPIView):
    serializer_class = RunSerializer

    @extend_schema(request=None, responses={200: RunSerializer, **_ERRORS, **_STATE_CONFLICT})
    def post(self, request: Request, run_id: int) -> Response:
        services.run_cancel(run=self.run(), user=request.user)
        return Response(RunSerializer(self.run()).data)


class RunResumeView(ExperimentsAPIView):
    serializer_class = RunSerializer

    @extend_schema(request=None, responses={202: RunSerializer, **_ERRORS, **_STATE_CONFLICT})
    def post(self, request: Request, run_id: int) -> Response:
        services.run_resume(run=self.run(), user=request.user)
        return Response(RunSerializer(self.run()).data, status=status.HTTP_202_ACCEPTED)
