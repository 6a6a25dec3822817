"""The fault drills and URL walks use the experiments suite's people, idea and fast baseline (made through the
real services); re-exported here once instead of imported in every drill."""
from tests.experiments.conftest import area, fast_baseline, make_idea, pic, staff, volunteer  # noqa: F401
