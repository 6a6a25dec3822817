from django.urls import path

from experiments import api

urlpatterns = [
    path("baselines/", api.BaselineListView.as_view(), name="api_baseline_list"),
    path("baselines/<str:name>/", api.BaselineDetailView.as_view(), name="api_baseline_detail"),
    path("corpora/", api.CorpusListView.as_view(), name="api_corpus_list"),
    path("studies/", api.StudyListView.as_view(), name="api_study_list"),
    path("studies/preview/", api.StudyPreviewView.as_view(), name="api_study_preview"),
    path("studies/<int:study_id>/", api.StudyDetailView.as_view(), name="api_study_detail"),
    path("studies/<int:study_id>/cancel/", api.StudyCancelView.as_view(), name="api_study_cancel"),
    path("runs/", api.RunListView.as_view(), name="api_run_list"),
    path("runs/compare/", api.RunCompareView.as_view(), name="api_run_compare"),
    path("runs/<int:run_id>/logs/", api.RunLogsView.as_view(), name="api_run_logs"),
    path("runs/<int:run_id>/", api.RunDetailView.as_view(), name="api_run_detail"),
    path("runs/<int:run_id>/metrics/", api.RunMetricsView.as_view(), name="api_run_metrics"),
    path("runs/<int:run_id>/cancel/", api.RunCancelView.as_view(), name="api_run_cancel"),
    path("runs/<int:run_id>/resume/", api.RunResumeView.as_view(), name="api_run_resume"),
]
