from django.urls import path

from compute import api

urlpatterns = [
    path("cycles/", api.CycleListView.as_view(), name="api_cycle_list"),
    path("cycles/<int:pk>/allocations/", api.CycleAllocationsView.as_view(), name="api_cycle_allocations"),
    path("cycles/<int:pk>/figures/", api.CycleFiguresView.as_view(), name="api_cycle_figures"),
    path("pools/", api.PoolListView.as_view(), name="api_pool_list"),
    path("requests/", api.RequestListView.as_view(), name="api_request_list"),
    path("requests/<int:pk>/", api.RequestDetailView.as_view(), name="api_request_detail"),
    path("requests/<int:pk>/review/", api.RequestReviewView.as_view(), name="api_request_review"),
    path("usage/", api.UsageView.as_view(), name="api_usage"),
]
