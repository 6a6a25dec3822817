"""The 403 answer of a PermissionDenied no view catches: the site's frame and the reason, or only the reason for htmx."""
from ideas import services


def _edit_url_refused_to(client, area, submitter, member, **headers):
    idea = services.idea_create(submitter=submitter, area=area, title="Shared experts", summary="One always-on expert.")
    client.force_login(member)
    return client.get(f"/ideas/{idea.key}/edit/", headers=headers)


def test_a_refused_page_keeps_the_site_frame_and_says_why(client, area, submitter, member):
    response = _edit_url_refused_to(client, area, submitter, member)
    assert response.status_code == 403
    page = response.content.decode()
    assert '<nav class="nav"' in page and "Not allowed" in page
    assert "Only the submitter may edit, and only while the idea is submitted." in page


def test_a_refused_htmx_request_gets_only_the_reason_to_swap_in(client, area, submitter, member):
    response = _edit_url_refused_to(client, area, submitter, member, HX_Request="true")
    assert response.status_code == 403
    fragment = response.content.decode().strip()
    assert fragment.startswith('<div class="alert alert-error" role="alert">') and "<nav" not in fragment
    assert "Only the submitter may edit" in fragment
