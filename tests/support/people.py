"""Plain factories for the people and the fast baseline that the app suites share (their fixtures live in
tests/conftest.py); everything goes through the real services and the real user model."""
from django.contrib.auth.models import Group, User

from experiments import services as experiment_services
from experiments.models import Baseline

# Tests that sign in through the login form (not force_login) type this password.
PASSWORD = "pw-for-tests-1"

# The default hasher costs ~0.3 s per hash by design; tests that hash passwords swap in this one.
FAST_PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# tiny-ci shrunk so a run of a few steps takes seconds: it logs every step and checkpoints every 2 steps, so
# tests can stop a run part-way and see it resume.
FAST_OVERRIDES = {
    "train.batch_size": 2,
    "train.seq_len": 32,
    "train.log_every": 1,
    "train.eval_every": 2,
    "train.eval_batches": 1,
    "train.checkpoint_every": 2,
    "optim.warmup_steps": 1,
}


def create_user(username: str, *, password: str | None = None, reviewer: bool = False, **fields: object) -> User:
    """A user with the address `<username>@example.org` (unless ``email`` is given) and, in the reviewers group
    when ``reviewer``. Without ``password`` the password is unusable: hashing one costs time, and such users
    sign in with force_login."""
    fields.setdefault("email", f"{username}@example.org")
    user = User.objects.create_user(username=username, password=password, **fields)
    if reviewer:
        user.groups.add(Group.objects.get_or_create(name="reviewers")[0])
    return user


def create_fast_baseline() -> Baseline:
    """The baseline `tiny-fast` (version 1 in a fresh database): tiny-ci with FAST_OVERRIDES."""
    return experiment_services.baseline_save(name="tiny-fast", recipe="tiny-ci", overrides=FAST_OVERRIDES)
