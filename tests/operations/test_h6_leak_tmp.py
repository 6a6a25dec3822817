from ideas.lifecycle import Status
from ideas.models import Transition
from ideas import services as idea_services
from tests.operations.test_state_machine import Lifecycles, make_world

def test_leak(db, monkeypatch):
    monkeypatch.setattr("ideas.services.allowed_targets", lambda status: tuple(Status.values))
    Lifecycles.world = make_world()
    before = Transition.objects.count()
    m = Lifecycles()
    m.move_idea(idea=0, to="submitted", decided=False, by_pic=True)
    print("inside", Transition.objects.count())
    try:
        m.check_invariants
        m.terminal_ideas_stay_terminal()
    except AssertionError as e:
        print("assert", e)
    m.teardown()
    print("before", before, "after", Transition.objects.count())
