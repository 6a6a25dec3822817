from django.urls import path

from accounts import api

urlpatterns = [
    path("tokens/", api.TokenListView.as_view(), name="api_token_list"),
    path("tokens/<int:pk>/", api.TokenDetailView.as_view(), name="api_token_detail"),
]
