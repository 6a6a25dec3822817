"""REST API for studies and runs (/api/v1/studies/, /api/v1/runs/): parse, call one service or selector,
answer. Error mapping (``core.api``, for every app): ValidationError → 400 keyed by field, PermissionDenied →
403, unknown id → 404, ConflictError → 409 listing the conflicts, RunStateConflict → 409, BudgetRefused →
409 with requested, remaining, grant and can_grant_more.
Anyone signed in may read, except restricted areas' studies and runs (404, ``experiments.visibility``);
launching, cancelling and resuming are checked by the services."""
from __future__ import annotations

import dataclasses
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from core import idempotency
from core.api import ApiView
from experiments import explorer, selectors, services
from experiments.models import Baseline, Run, Study
from experiments.planning import baseline_config, resolve_baseline
from experiments.preview import study_preview
from experiments.results import FINAL_METRIC, study_results
from experiments.serializers import (
    BaselineDetailSerializer,
    BaselineSerializer,
    ConflictResponseSerializer,
    CorpusQuerySerializer,
    CorpusSerializer,
    MetricQuerySerializer,
    MetricSeriesSerializer,
    RunCompareSerializer,
    RunListQuerySerializer,
    RunListSerializer,
    RunLogQuerySerializer,
    RunLogSerializer,
    RunSerializer,
    StateConflictSerializer,
    StudyCancelSerializer,
    StudyCreateSerializer,
    StudyDetailSerializer,
    StudyListQuerySerializer,
    StudyListSerializer,
    StudyMetricQuerySerializer,
    StudyPreviewSerializer,
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


class StudyListView(mixins.ListModelMixin, ExperimentsAPIView):
    serializer_class = StudyListSerializer

    def get_queryset(self) -> QuerySet[Study]:
        query = self.parse(StudyListQuerySerializer, self.request.query_params)
        query.pop("page", None)
        return selectors.study_search(user=self.request.user, filters=selectors.StudyFilters(**query))

    @extend_schema(parameters=[StudyListQuerySerializer], responses={200: StudyListSerializer(many=True), 400: _ERRORS[400]})
    def get(self, request: Request) -> Response:
        """Studies you may see, newest first, filtered by kind, overall status, idea, area, launcher, baseline."""
        return self.list(request)

    @extend_schema(request=StudyCreateSerializer, parameters=[idempotency.PARAMETER], responses={
        201: StudyDetailSerializer, **_ERRORS, **idempotency.RESPONSES,
        409: OpenApiResponse(ConflictResponseSerializer, description=(
            "Ideas set one key to different values (body: `conflicts`), or the study's estimate exceeds the "
            "remaining grant (body: `requested`, `remaining`, `grant`, `can_grant_more`).")),
    })
    @idempotency.idempotent
    def post(self, request: Request) -> Response:
        """Launch a study (plan it first with ``POST /api/v1/studies/preview/``). With an ``Idempotency-Key``,
        sending the same launch again answers the study already launched."""
        study = services.study_launch(user=request.user, **self.parse(StudyCreateSerializer, request.data))
        return self.study_response(study.pk, status.HTTP_201_CREATED)


class StudyPreviewView(ExperimentsAPIView):
    serializer_class = StudyPreviewSerializer

    @extend_schema(request=StudyCreateSerializer, responses={200: StudyPreviewSerializer, 400: _ERRORS[400]})
    def post(self, request: Request) -> Response:
        """What launching this body would do — arms, composed patches, conflicts, identical configs merged,
        GPU-hour estimate, whether the grant covers it — creating nothing."""
        arguments = self.parse(StudyCreateSerializer, request.data)
        for launch_only in ("title", "override_reason"):
            arguments.pop(launch_only)
        return Response(StudyPreviewSerializer(study_preview(user=request.user, **arguments)).data)


class StudyDetailView(ExperimentsAPIView):
    serializer_class = StudyDetailSerializer

    @extend_schema(parameters=[StudyMetricQuerySerializer], responses={200: StudyDetailSerializer, **_ERRORS})
    def get(self, request: Request, study_id: int) -> Response:
        return self.study_response(study_id, query=request.query_params)


class StudyCancelView(ExperimentsAPIView):
    serializer_class = StudyCancelSerializer

    @extend_schema(request=None, responses={200: StudyCancelSerializer, **_ERRORS})
    def post(self, request: Request, study_id: int) -> Response:
        """Cancel every live run of the study."""
        study = selectors.study_get(study_id, user=request.user)
        return Response({"cancelled": services.study_cancel(study=study, user=request.user)})


class RunPagination(PageNumberPagination):
    django_paginator_class = explorer.RunPaginator


class RunListView(mixins.ListModelMixin, ExperimentsAPIView):
    """The runs explorer: every run the caller may see, across studies."""

    serializer_class = RunListSerializer
    pagination_class = RunPagination

    def get_queryset(self):
        return explorer.runs_explore(user=self.request.user, query=explorer.parse_run_query(self.request.query_params))

    @extend_schema(
        parameters=[RunListQuerySerializer, OpenApiParameter(
            "config.<dotted key>", str, description="runs whose resolved config has this value, e.g. "
            "config.optim.lr=0.002 or config.fp4.enabled=true (repeat with other keys to combine)")],
        responses={200: RunListSerializer(many=True), 400: _ERRORS[400]},
    )
    def get(self, request: Request) -> Response:
        return self.list(request)


class RunCompareView(ExperimentsAPIView):
    serializer_class = RunCompareSerializer

    @extend_schema(parameters=[OpenApiParameter("ids", str, required=True, description="run ids, e.g. 1,2,3")],
                   responses={200: RunCompareSerializer, **_ERRORS})
    def get(self, request: Request) -> Response:
        ids = explorer.parse_run_ids(request.query_params.get("ids", ""))
        return Response(RunCompareSerializer(explorer.runs_compare(user=request.user, ids=ids)).data)


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


class RunLogsView(ExperimentsAPIView):
    serializer_class = RunLogSerializer

    @extend_schema(parameters=[RunLogQuerySerializer], responses={200: RunLogSerializer, **_ERRORS})
    def get(self, request: Request, run_id: int) -> Response:
        """A chunk of an attempt's log from a byte offset; ask again from ``next_offset`` to follow it."""
        run = self.run()
        query = self.parse(RunLogQuerySerializer, request.query_params)
        attempts = {attempt.number: attempt for attempt in run.attempts.all()}
        number = query.get("attempt", max(attempts, default=0))
        if number not in attempts:
            have = ", ".join(map(str, sorted(attempts))) or "none yet"
            raise DjangoValidationError({"attempt": f"run {run.pk} has no attempt {number}; attempts: {have}"})
        chunk = selectors.attempt_log(attempts[number], offset=query["offset"])
        return Response({"run": run.pk, **dataclasses.asdict(chunk)})


class RunCancelView(ExperimentsAPIView):
    serializer_class = RunSerializer

    @extend_schema(request=None, responses={200: RunSerializer, **_ERRORS, **_STATE_CONFLICT})
    def post(self, request: Request, run_id: int) -> Response:
        services.run_cancel(run=self.run(), user=request.user)
        return Response(RunSerializer(self.run()).data)


class RunResumeView(ExperimentsAPIView):
    serializer_class = RunSerializer

    @extend_schema(request=None, parameters=[idempotency.PARAMETER],
                   responses={202: RunSerializer, **_ERRORS, **_STATE_CONFLICT, **idempotency.RESPONSES})
    @idempotency.idempotent
    def post(self, request: Request, run_id: int) -> Response:
        services.run_resume(run=self.run(), user=request.user)
        return Response(RunSerializer(self.run()).data, status=status.HTTP_202_ACCEPTED)


class BaselineListView(mixins.ListModelMixin, ExperimentsAPIView):
    serializer_class = BaselineSerializer

    def get_queryset(self) -> QuerySet[Baseline]:
        return selectors.baselines_latest()

    def get(self, request: Request) -> Response:
        """The latest version of every baseline, by name."""
        return self.list(request)


class BaselineDetailView(ExperimentsAPIView):
    serializer_class = BaselineDetailSerializer

    @extend_schema(responses={200: BaselineDetailSerializer, 404: _ERRORS[404]})
    def get(self, request: Request, name: str) -> Response:
        """A baseline's latest version (or ``name@N``), its versions and its resolved config."""
        try:
            baseline = resolve_baseline(name)
        except DjangoValidationError:
            raise Http404(f"no baseline {name!r}") from None
        context = {"versions": selectors.baseline_versions(baseline.name), "config": baseline_config(baseline)}
        return Response(BaselineDetailSerializer(baseline, context=context).data)
