from django.urls import path, register_converter

from ideas import views


class IdeaKeyConverter:
    """`IDEA-0042`, any case; the view redirects non-canonical spellings to the canonical key."""

    regex = r"[A-Za-z]+-\d+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(IdeaKeyConverter, "ideakey")

urlpatterns = [
    path("", views.home, name="home"),
    path("ideas/", views.idea_list, name="idea_list"),
    path("ideas/new/", views.idea_submit, name="idea_submit"),
    path("ideas/<ideakey:key>", views.idea_detail, name="idea_detail"),
    path("ideas/<ideakey:key>/", views.idea_detail),
    path("ideas/<ideakey:key>/edit/", views.idea_edit, name="idea_edit"),
    path("ideas/<ideakey:key>/move/", views.idea_move, name="idea_move"),
    path("ideas/<ideakey:key>/comments/", views.idea_comment, name="idea_comment"),
    path("ideas/<ideakey:key>/watch/", views.idea_watch, name="idea_watch"),
    path("areas/", views.area_list, name="area_list"),
    path("areas/<slug:slug>/", views.area_board, name="area_board"),
    path("areas/<slug:slug>/move/", views.area_board_move, name="area_board_move"),
    path("areas/<slug:slug>/volunteer/", views.area_volunteer, name="area_volunteer"),
    path("areas/<slug:slug>/launchers/", views.area_launcher, name="area_launcher"),
    path("areas/<slug:slug>/handover/", views.area_hand_over, name="area_hand_over"),
    path("api/", views.api_help, name="api_help"),
]
