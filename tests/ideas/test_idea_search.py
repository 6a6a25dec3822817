"""Finding ideas: every word anywhere in key, title, summary or tags; a pasted key jumps to the idea."""
import pytest

from ideas.models import Area


@pytest.fixture
def web(client_for, submitter):
    return client_for(submitter)


@pytest.fixture
def ideas(make_idea):
    return {
        "rounding": make_idea(title="Stochastic rounding for FP4 gradient casts", summary="Unbiased casts.",
                              tags=["nvfp4"], recipe_patch={"fp4.enabled": True}),
        "latent": make_idea(title="Latent MoE", summary="Route a **latent** of the token.", tags=["moe"]),
        "clip": make_idea(title="Gradient clipping at 0.5", summary="Stabler FP4 runs?", tags=["optim"]),
    }


@pytest.mark.parametrize("query, expected", [
    ("stochastic FP4 gradient", ["rounding"]),  # words in any order, not a phrase
    ("gradient", ["clip", "rounding"]),
    ("fp4 stabler", ["clip"]),  # title and summary together
    ("nvfp4 casts", ["rounding"]),  # a tag and a title word
    ("latent token", ["latent"]),
    ("stochastic latent", []),  # every word must match the same idea
])
def test_search_needs_every_word_somewhere_in_one_idea(web, ideas, query, expected):
    html = web.get("/ideas/", {"q": query}).content.decode()

    found = sorted(name for name, idea in ideas.items() if idea.key in html)
    assert found == expected


def test_a_pasted_key_jumps_to_the_idea(web, ideas):
    idea = ideas["latent"]

    response = web.get("/ideas/", {"q": f"  {idea.key.lower()} "})
    assert response.status_code == 302 and response.url == idea.get_absolute_url()
    fragment = web.get("/ideas/", {"q": idea.key}, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 204 and fragment.headers["HX-Redirect"] == idea.get_absolute_url()


def test_a_key_the_user_may_not_see_does_not_jump(ideas, client_for, make_user, area):
    Area.objects.filter(pk=area.pk).update(restricted=True)

    response = client_for(make_user("olga")).get("/ideas/", {"q": ideas["latent"].key})

    assert response.status_code == 200 and ideas["latent"].get_absolute_url() not in response.content.decode()
