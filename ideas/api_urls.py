from django.urls import path

from ideas import api

urlpatterns = [
    path("areas/", api.AreaListView.as_view(), name="api_area_list"),
    path("areas/<slug:slug>/", api.AreaDetailView.as_view(), name="api_area_detail"),
    path("ideas/", api.IdeaListView.as_view(), name="api_idea_list"),
    path("ideas/<str:key>/", api.IdeaDetailView.as_view(), name="api_idea_detail"),
    path("ideas/<str:key>/transitions/", api.IdeaTransitionView.as_view(), name="api_idea_transitions"),
    path("ideas/<str:key>/comments/", api.IdeaCommentsView.as_view(), name="api_idea_comments"),
]
