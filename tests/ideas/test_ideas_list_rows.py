"""The idea table's rows are memoised per process; every change a row shows must still show up at once."""
from ideas import services


def _table_body(client) -> str:
    html = client.get("/ideas/").content.decode()
    return html[html.index("<tbody>"):html.index("</tbody>")]


def test_rows_follow_edits_retags_renames_and_handovers(client_for, submitter, staff, other_pic, area, idea):
    web = client_for(submitter)
    before = _table_body(web)
    assert "Latent MoE with latent size 64" in before and "moe-routing" in before and "pia" in before

    services.idea_update(idea=idea, by=submitter, changes={"title": "Latent MoE, size 128", "tags": ["routing"]})
    edited = _table_body(web)
    assert "Latent MoE, size 128" in edited and "latent size 64" not in edited
    assert "?tag=routing" in edited and "?tag=latent" not in edited

    area.name = "Mixture-of-experts routing"
    area.save(update_fields=["name"])
    services.area_hand_over(area=area, to_user=other_pic, by=staff)
    moved = _table_body(web)
    assert ">Mixture-of-experts routing</a>" in moved and ">MoE routing</a>" not in moved
    assert ">otto</td>" in moved and ">pia</td>" not in moved


def test_row_text_is_escaped(client_for, submitter, make_idea):
    make_idea(title='Router <b>bias</b> & "aux" loss')
    body = _table_body(client_for(submitter))
    assert "Router &lt;b&gt;bias&lt;/b&gt; &amp; &quot;aux&quot; loss" in body and "<b>" not in body
