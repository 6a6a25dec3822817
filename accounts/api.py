"""REST API for one's own tokens (/api/v1/tokens/)."""
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services
from accounts.models import ApiToken
from accounts.serializers import ApiTokenCreateSerializer, ApiTokenSerializer, IssuedTokenSerializer
from core.api import ApiView

_NOT_YOURS = OpenApiResponse(description="No such token among yours (another user's token looks the same).")


class TokensAPIView(ApiView):
    serializer_class = ApiTokenSerializer

    def get_queryset(self) -> QuerySet[ApiToken]:
        return selectors.api_tokens_of(self.request.user)


class TokenListView(mixins.ListModelMixin, TokensAPIView):
    def get(self, request: Request) -> Response:
        return self.list(request)

    @extend_schema(request=ApiTokenCreateSerializer, responses={
        201: IssuedTokenSerializer,
        400: OpenApiResponse(description="Invalid input; the body names each offending field."),
        403: OpenApiResponse(description="The request was authenticated with a token; tokens cannot mint tokens."),
    })
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, ApiToken):
            # A leaked token must not be able to outlive its own revocation by minting successors.
            raise PermissionDenied("Tokens cannot create tokens; sign in (session) or use /accounts/tokens/.")
        issued = services.api_token_create(owner=request.user, **self.parse(ApiTokenCreateSerializer, request.data))
        body = {**ApiTokenSerializer(issued.token).data, "token": issued.secret}
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class TokenDetailView(TokensAPIView):
    def get_object(self) -> ApiToken:
        return selectors.api_token_get_for_user(pk=self.kwargs["pk"], user=self.request.user)

    @extend_schema(responses={200: ApiTokenSerializer, 404: _NOT_YOURS})
    def get(self, request: Request, pk: int) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(responses={204: None, 404: _NOT_YOURS})
    def delete(self, request: Request, pk: int) -> Response:
        """Revoke the token (kept in the list, marked revoked)."""
        services.api_token_revoke(token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
