from django.urls import path

from compute import views

app_name = "compute"

urlpatterns = [
    path("", views.index, name="index"),
    path("cycles/<int:cycle_id>/", views.cycle_overview, name="cycle"),
    path("cycles/<int:cycle_id>/phase/", views.cycle_phase, name="cycle_phase"),
    path("cycles/<int:cycle_id>/report/", views.cycle_report, name="cycle_report"),
    path("cycles/<int:cycle_id>/review/", views.review_queue, name="review_queue"),
    path("cycles/<int:cycle_id>/review/approve-pilots/", views.requests_bulk_approve, name="review_bulk_approve"),
    path("cycles/<int:cycle_id>/review/panel/", views.review_panel, name="review_panel"),
    path("cycles/<int:cycle_id>/review.csv", views.review_csv, name="review_csv"),
    path("cycles/<int:cycle_id>/<slug:table>.csv", views.cycle_csv, name="cycle_csv"),
    path("requests/new/", views.request_new, name="request_new"),
    path("requests/<int:request_id>/review/", views.request_review, name="request_review"),
    path("areas/<slug:slug>/", views.area_budget, name="budget"),
    path("areas/<slug:slug>/grant/", views.area_grant, name="budget_grant"),
    path("areas/<slug:slug>/ledger/", views.usage_ledger, name="ledger"),
    path("areas/<slug:slug>/ledger.csv", views.usage_ledger_csv, name="ledger_csv"),
    path("areas/<slug:slug>/<slug:table>.csv", views.area_csv, name="budget_csv"),
    path("trends/", views.trends, name="trends"),
    path("trends/<slug:table>.csv", views.trends_csv, name="trends_csv"),
]
