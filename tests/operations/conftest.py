"""The fault drills and URL walks use the experiments suite's `make_idea` (made through the real services);
re-exported here once instead of imported in every drill. People, `area` and `fast_baseline` are the suite's."""
from tests.experiments.conftest import make_idea  # noqa: F401
