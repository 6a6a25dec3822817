from django.urls import path

from experiments import api

urlpatterns = [
    path("corpora/", api.CorpusListView.as_view(), name="api_corpus_list"),
    path("studies/", api.StudyCreateView.as_view(), name="api_study_create"),
    path("studies/<int:study_id>/", api.StudyDetailView.as_view(), name="api_study_detail"),
    path("runs/<int:run_id>/", api.RunDetailView.as_view(), name="api_run_detail"),
    path("runs/<int:run_id>/metrics/", api.RunMetricsView.as_view(), name="api_run_metrics"),
    path("runs/<int:run_id>/cancel/", api.RunCancelView.as_view(), name="api_run_cancel"),
    path("runs/<int:run_id>/resume/", api.RunResumeView.as_view(), name="api_run_resume"),
]
