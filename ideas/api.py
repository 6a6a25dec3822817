"""REST API (/api/v1/): parse with a serializer, call one service or selector, answer.

Service errors map to HTTP in ``core.api``: ValidationError → 400 (keyed by field), PermissionDenied → 403,
unknown key/slug → 404, IllegalTransition → 409 with the allowed targets.
"""
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from core import idempotency
from core.api import ApiView
from ideas import selectors, services
from ideas.models import Area, Idea
from ideas.patch_warnings import patch_warnings
from ideas.serializers import (
    AreaCreateSerializer,
    AreaSerializer,
    CommentInputSerializer,
    CommentSerializer,
    IdeaCreateSerializer,
    IdeaDetailSerializer,
    IdeaListQuerySerializer,
    IdeaSavedSerializer,
    IdeaSerializer,
    IdeaUpdateSerializer,
    IllegalTransitionSerializer,
    TransitionInputSerializer,
    TransitionSerializer,
)

_ERRORS = {
    400: OpenApiResponse(description="Invalid input; the body names each offending field."),
    403: OpenApiResponse(description="Not allowed for this user."),
    404: OpenApiResponse(description="Unknown key or slug."),
}


class IdeasAPIView(ApiView):
    def idea(self) -> Idea:
        return selectors.idea_get_for_user(key=self.kwargs["key"], user=self.request.user)


class AreaListView(mixins.ListModelMixin, IdeasAPIView):
    serializer_class = AreaSerializer

    def get_queryset(self) -> QuerySet[Area]:
        return selectors.areas_overview(user=self.request.user)

    def get(self, request: Request) -> Response:
        return self.list(request)

    @extend_schema(request=AreaCreateSerializer, responses={201: AreaSerializer, **_ERRORS})
    def post(self, request: Request) -> Response:
        area = services.area_create(by=request.user, **self.parse(AreaCreateSerializer, request.data))
        return Response(AreaSerializer(area).data, status=status.HTTP_201_CREATED)


class AreaDetailView(IdeasAPIView):
    queryset = Area.objects.all()
    serializer_class = AreaSerializer
    lookup_field = "slug"

    @extend_schema(responses={200: AreaSerializer, 404: _ERRORS[404]})
    def get(self, request: Request, slug: str) -> Response:
        return Response(AreaSerializer(selectors.area_get_for_user(slug=slug, user=request.user)).data)


class IdeaListView(mixins.ListModelMixin, IdeasAPIView):
    serializer_class = IdeaSerializer

    def get_queryset(self) -> QuerySet[Idea]:
        query = self.parse(IdeaListQuerySerializer, self.request.query_params)
        query.pop("page", None)
        return selectors.idea_list(user=self.request.user, filters=selectors.IdeaFilters(**query))

    @extend_schema(parameters=[IdeaListQuerySerializer], responses={200: IdeaSerializer(many=True), 400: _ERRORS[400]})
    def get(self, request: Request) -> Response:
        return self.list(request)

    @extend_schema(request=IdeaCreateSerializer, parameters=[idempotency.PARAMETER],
                   responses={201: IdeaSavedSerializer, **_ERRORS, **idempotency.RESPONSES})
    @idempotency.idempotent
    def post(self, request: Request) -> Response:
        idea = services.idea_create(submitter=request.user, **self.parse(IdeaCreateSerializer, request.data))
        return Response(_saved(idea, patch_changed=True), status=status.HTTP_201_CREATED)


class IdeaDetailView(IdeasAPIView):
    queryset = Idea.objects.all()
    serializer_class = IdeaDetailSerializer
    lookup_field = "key"

    @extend_schema(responses={200: IdeaDetailSerializer, 404: _ERRORS[404]})
    def get(self, request: Request, key: str) -> Response:
        return Response(IdeaDetailSerializer(self.idea()).data)

    @extend_schema(request=IdeaUpdateSerializer, responses={200: IdeaSavedSerializer, **_ERRORS})
    def patch(self, request: Request, key: str) -> Response:
        idea = self.idea()  # the object check comes first: a hidden idea is a 404 whatever the body says
        changes = self.parse(IdeaUpdateSerializer, request.data, partial=True)
        idea = services.idea_update(idea=idea, by=request.user, changes=changes)
        return Response(_saved(idea, patch_changed="recipe_patch" in changes))


def _saved(idea: Idea, *, patch_changed: bool) -> dict:
    warnings = patch_warnings(idea.recipe_patch) if patch_changed else []
    return IdeaSavedSerializer(idea, context={"warnings": warnings}).data


class IdeaTransitionView(IdeasAPIView):
    queryset = Idea.objects.all()
    serializer_class = TransitionSerializer
    lookup_field = "key"

    @extend_schema(
        request=TransitionInputSerializer,
        responses={201: TransitionSerializer, 409: IllegalTransitionSerializer, **_ERRORS},
    )
    def post(self, request: Request, key: str) -> Response:
        idea = self.idea()
        data = self.parse(TransitionInputSerializer, request.data)
        decision = services.DecisionInput(**data["decision"]) if data["decision"] else None
        transition = services.idea_transition(
            idea=idea, to_status=data["to"], by=request.user, note=data["note"], decision=decision
        )
        return Response(TransitionSerializer(transition).data, status=status.HTTP_201_CREATED)


class IdeaCommentsView(IdeasAPIView):
    queryset = Idea.objects.all()
    serializer_class = CommentSerializer
    lookup_field = "key"
    pagination_class = None

    @extend_schema(responses={200: CommentSerializer(many=True), 404: _ERRORS[404]})
    def get(self, request: Request, key: str) -> Response:
        return Response(CommentSerializer(selectors.idea_comments(self.idea()), many=True).data)

    @extend_schema(request=CommentInputSerializer, responses={201: CommentSerializer, **_ERRORS})
    def post(self, request: Request, key: str) -> Response:
        idea = self.idea()
        body = self.parse(CommentInputSerializer, request.data)["body"]
        comment = services.comment_create(idea=idea, author=request.user, body=body)
        return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)
