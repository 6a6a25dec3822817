"""REST API for studies and runs (/api/v1/studies/, /api/v1/runs/): parse, call one service or selector,
answer. Error mapping (``core.api``, for every app): ValidationError → 400 keyed by field, PermissionDenied →
403, unknown id → 404, ConflictError → 409 listing the conflicts, RunStateConflict → 409, BudgetRefused →
409 with requested, remaining, grant and can_grant_more.
Anyone signed in may read, except restricted areas' studies and runs (404, ``experiments.visibility``);
launching, cancelling and resuming are checked by the services."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ApiView
from experiments import selectors, services
from experiments.models import Run
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


class ExperimentsAPIView(ApiView):
    def study_response(self, study_id: int, code: int = status.HTTP_200_OK, query: Any = None) -> Response:
        """The study (404 first when hidden), its results on ``query``'s ``metric`` (default ``val_loss``)."""
        study = selectors.study_detail(study_id, user=self.request.user)
        metric = self.parse(StudyMetricQuerySerializer, query)["metric"] if query is not None else FINAL_METRIC
        if metric != FINAL_METRIC:
            logged = selectors.metric_names([run.pk for run in study.runs.all()], "")
            losses = [name for name in logged if "loss" in name]
            if metric not in losses:
                raise DjangoValidationError({"metric": f"study {study.pk} has no loss metric {metric!r}; it has "
                                                       f"{', '.join(losses) or 'none yet'}"})
        serializer = StudyDetailSerializer(study, context={"results": study_results(study, metric)})
        return Response(serializer.data, status=code)

    def run(self) -> Run:
        return selectors.run_detail(self.kwargs["run_id"], user=self.request.user)


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
        series = selectors.run_metric_series(run, query["name"], max_points=query.get("max_points"))
        return Response({"run": run.pk, "name": series.name, "count": series.count, "points": series.points})


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
