"""Areas with one pilot in command (PIC), ideas with permanent keys, and everything said about them."""
from django.conf import settings
from django.core.validators import MaxLengthValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from ideas.lifecycle import Status

USER = settings.AUTH_USER_MODEL
MAX_MARKDOWN_CHARS = 20_000


class Area(models.Model):
    """A research area. ``pic`` is non-null, so the database guarantees exactly one PIC at any time."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    pic = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="piloted_areas", verbose_name="PIC")
    volunteers = models.ManyToManyField(USER, through="AreaMembership", related_name="volunteered_areas", blank=True)
    restricted = models.BooleanField(
        default=False, help_text="Only staff, the PIC and the area's members see its ideas, studies and compute."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("area_board", args=[self.slug])


class AreaMembership(models.Model):
    """A member who volunteered to help in an area. Volunteering alone confers no power over the area's
    compute: ``can_launch`` (granted by the PIC) lets them launch, cancel and resume studies that spend it."""

    area = models.ForeignKey(Area, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(USER, on_delete=models.CASCADE, related_name="area_memberships")
    joined_at = models.DateTimeField(auto_now_add=True)
    can_launch = models.BooleanField(default=False, help_text="granted by the PIC: may launch and cancel studies")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["area", "user"], name="ideas_membership_unique")]
        ordering = ["joined_at"]


class PicHandover(models.Model):
    """One change of an area's PIC; the first row of an area has no ``from_user``."""

    area = models.ForeignKey(Area, on_delete=models.CASCADE, related_name="handovers")
    from_user = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+", null=True, blank=True)
    to_user = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class Tag(models.Model):
    name = models.SlugField(max_length=40, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class IdeaKeyCounter(models.Model):
    """Single row holding the last issued idea number; locked inside each idea's create transaction,
    so numbers are unique, gap-free and never reused (a rolled-back create rolls the counter back too)."""

    last_number = models.PositiveIntegerField(default=0)


class Idea(models.Model):
    number = models.PositiveIntegerField(unique=True, editable=False)
    key = models.CharField(max_length=16, unique=True, editable=False)
    title = models.CharField(max_length=200)
    summary = models.TextField(help_text="Markdown", validators=[MaxLengthValidator(MAX_MARKDOWN_CHARS)])
    hypothesis = models.TextField(blank=True, help_text="Markdown", validators=[MaxLengthValidator(MAX_MARKDOWN_CHARS)])
    area = models.ForeignKey(Area, on_delete=models.PROTECT, related_name="ideas")
    submitter = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="submitted_ideas")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SUBMITTED)
    recipe_patch = models.JSONField(default=dict, blank=True)
    estimated_gpu_hours = models.DecimalField(
        "estimated GPU-hours", max_digits=10, decimal_places=1, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    tags = models.ManyToManyField(Tag, related_name="ideas", blank=True)
    watchers = models.ManyToManyField(USER, related_name="watched_ideas", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-number"]
        indexes = [
            models.Index(fields=["status", "-number"], name="ideas_idea_status_idx"),
            models.Index(fields=["area", "status"], name="ideas_idea_area_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("idea_detail", args=[self.key])


def format_idea_key(number: int) -> str:
    return f"IDEA-{number:04d}"


class Decision(models.Model):
    """Why an idea landed or was rejected: what the evidence showed, with links to it."""

    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="decisions")
    outcome = models.CharField(max_length=20, choices=[(s, s.label) for s in (Status.LANDED, Status.REJECTED)])
    summary = models.TextField(
        help_text="What the evidence showed (Markdown)", validators=[MaxLengthValidator(MAX_MARKDOWN_CHARS)]
    )
    links = models.JSONField(default=list, blank=True)
    decided_by = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class Transition(models.Model):
    """One logged move of an idea through the lifecycle."""

    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=20, choices=Status.choices)
    to_status = models.CharField(max_length=20, choices=Status.choices)
    actor = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    note = models.TextField(blank=True)
    decision = models.OneToOneField(Decision, on_delete=models.PROTECT, null=True, blank=True, related_name="transition")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]


class Comment(models.Model):
    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="idea_comments")
    body = models.TextField(help_text="Markdown", validators=[MaxLengthValidator(MAX_MARKDOWN_CHARS)])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]


class Activity(models.Model):
    """Something that happened to an idea; the feed on the home page and the unit of notification
    (``ideas.notifications``)."""

    class Kind(models.TextChoices):
        SUBMITTED = "submitted", "submitted"
        EDITED = "edited", "edited"
        TRANSITIONED = "transitioned", "moved"
        COMMENTED = "commented", "commented on"

    idea = models.ForeignKey(Idea, on_delete=models.CASCADE, related_name="activities")
    actor = models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    transition = models.ForeignKey(Transition, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "activities"
