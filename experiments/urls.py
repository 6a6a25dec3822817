from django.urls import path

from experiments import explorer_views, views

app_name = "experiments"

urlpatterns = [
    path("", views.study_list, name="index"),
    path("studies/new/", views.study_new, name="study_new"),
    path("studies/new/preview/", views.study_preview, name="study_preview"),
    path("studies/<int:study_id>/", views.study_detail, name="study_detail"),
    path("studies/<int:study_id>/progress/", views.study_progress, name="study_progress"),
    path("studies/<int:study_id>/results/", views.study_results_fragment, name="study_results"),
    path("studies/<int:study_id>/cancel/", views.study_cancel, name="study_cancel"),
    path("ideas/<str:key>/ablation/", views.ablation_launch, name="ablation_launch"),
    path("runs/", explorer_views.run_list, name="run_list"),
    path("runs/compare/", explorer_views.run_compare, name="run_compare"),
    path("runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<int:run_id>/annotate/", views.run_annotate, name="run_annotate"),
    path("runs/<int:run_id>/live/", views.run_live, name="run_live"),
    path("runs/<int:run_id>/panels/", views.run_panels, name="run_panels"),
    path("runs/<int:run_id>/cancel/", views.run_cancel, name="run_cancel"),
    path("runs/<int:run_id>/resume/", views.run_resume, name="run_resume"),
    path("runs/<int:run_id>/rerun/", views.run_rerun, name="run_rerun"),
    path("corpora/", views.corpus_list, name="corpus_list"),
    path("baselines/", views.baseline_list, name="baseline_list"),
    path("baselines/<slug:name>/", views.baseline_detail, name="baseline_detail"),
]
