"""Issue 12.2: a backup survives text that was stored before it was refused (a lone surrogate)."""
import io

import pytest
from django.core.management import call_command
from django.db import connection

from ideas import services
from ideas.models import Idea


def test_export_and_import_survive_a_lone_surrogate_already_stored(submitter, area, tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's jsonb never took such text: it refuses a lone \\ud800 escape")
    idea = services.idea_create(submitter=submitter, area=area, title="a", summary="s", recipe_patch={})
    # A JSON column stores it as the ASCII escape \ud800: how the API stored it before the refusal existed.
    Idea.objects.filter(pk=idea.pk).update(recipe_patch={"data.corpus": "\ud800"})
    target = tmp_path / "backup.jsonl"
    call_command("export_all", str(target), stdout=io.StringIO())
    target.read_bytes().decode("utf-8")  # a valid UTF-8 file

    call_command("flush", interactive=False)
    call_command("import_all", str(target), stdout=io.StringIO())
    assert Idea.objects.get().recipe_patch == {"data.corpus": "\ud800"}
