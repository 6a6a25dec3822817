"""Input and output shapes of the compute API. Amounts are JSON numbers of GPU-hours."""
from rest_framework import serializers

from compute.cycles import Calendar, Phase
from compute.models import Cycle, Pool, Request, Review, Stage

MAX_DIGITS = 12


def hours_field(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=MAX_DIGITS, decimal_places=2, coerce_to_string=False, **kwargs)


class CycleSerializer(serializers.ModelSerializer):
    last_day = serializers.DateField(read_only=True)
    requests_open_from = serializers.SerializerMethodField()
    review_starts = serializers.SerializerMethodField()

    class Meta:
        model = Cycle
        fields = ["id", "start", "end", "last_day", "phase", "requests_open_from", "review_starts"]

    def get_requests_open_from(self, cycle: Cycle) -> str:
        return Calendar.from_settings().opens_at(cycle.window).isoformat()

    def get_review_starts(self, cycle: Cycle) -> str:
        return Calendar.from_settings().review_starts_at(cycle.window).isoformat()


class AllocationSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="allocation.id")
    level = serializers.CharField(source="allocation.level")
    parent = serializers.IntegerField(source="allocation.parent_id", allow_null=True)
    pool = serializers.CharField(source="allocation.pool.name")
    area = serializers.CharField(source="allocation.area.slug", allow_null=True, default=None)
    idea = serializers.CharField(source="allocation.idea.key", allow_null=True, default=None)
    gpu_hours = hours_field(source="allocation.gpu_hours")
    children_gpu_hours = hours_field(source="children_total")
    used_gpu_hours = hours_field(source="used")
    remaining_gpu_hours = hours_field(source="remaining")


class AllocationTreeSerializer(serializers.Serializer):
    """A cycle's whole allocation tree in one answer (not paginated: a tree split across pages is unreadable)."""

    cycle = serializers.IntegerField()
    phase = serializers.ChoiceField(choices=Phase.choices)
    results = AllocationSerializer(many=True)


class RequestInputSerializer(serializers.Serializer):
    cycle = serializers.IntegerField()
    area = serializers.SlugField()
    idea = serializers.CharField(allow_null=True, required=False, default=None)
    pool = serializers.CharField()
    gpu_hours = hours_field()
    justification = serializers.CharField(trim_whitespace=False)
    stage = serializers.ChoiceField(choices=Stage.choices)
    evidence_links = serializers.ListField(child=serializers.CharField(), required=False, default=list)


class ReviewOutputSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username")
    requested_hours = hours_field()
    granted_hours = hours_field()
    grant_before = hours_field()
    grant_after = hours_field()

    class Meta:
        model = Review
        fields = ["decision", "reviewer", "requested_hours", "granted_hours", "grant_before", "grant_after", "comment", "created_at"]


class RequestSerializer(serializers.ModelSerializer):
    area = serializers.CharField(source="area.slug")
    idea = serializers.CharField(source="idea.key", default=None, allow_null=True)  # null: an area request
    pool = serializers.CharField(source="pool.name")
    requester = serializers.CharField(source="requester.username")
    gpu_hours = hours_field()
    granted_hours = hours_field(allow_null=True)
    revisions = serializers.IntegerField(source="revisions.count")

    class Meta:
        model = Request
        fields = [
            "id", "cycle", "area", "idea", "pool", "gpu_hours", "granted_hours", "stage", "status",
            "justification", "evidence_links", "requester", "revisions", "created_at", "updated_at",
        ]


class ReviewInputSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Review.Decision.choices)
    gpu_hours = hours_field(required=False, allow_null=True, default=None)
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class UsageQuerySerializer(serializers.Serializer):
    cycle = serializers.IntegerField(required=False)
    area = serializers.SlugField(required=False)


class UsageRowSerializer(serializers.Serializer):
    area = serializers.CharField(source="area__slug")
    idea = serializers.CharField(source="idea__key", allow_null=True)
    pool = serializers.CharField(source="pool__name")
    gpu_hours = serializers.DecimalField(max_digits=16, decimal_places=4, coerce_to_string=False)


class UsageSerializer(serializers.Serializer):
    cycle = serializers.IntegerField()
    area = serializers.CharField(allow_null=True, help_text="the `area` asked for, or null for all areas")
    total_gpu_hours = serializers.FloatField()
    results = UsageRowSerializer(many=True)


class PoolSerializer(serializers.ModelSerializer):
    class Meta:
        model = Pool
        fields = ["name", "gpu_type", "gpu_count"]


class FiguresQuerySerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=["org", "pool", "area", "idea"], default="area")


class FigureRowSerializer(serializers.Serializer):
    target = serializers.CharField(help_text="`org`, a pool name, an area slug or an idea key")
    budget_gpu_hours = hours_field(source="figures.budget", allow_null=True, help_text="the org budget (org and pool rows; null otherwise)")
    granted_gpu_hours = hours_field(source="figures.granted")
    used_gpu_hours = hours_field(source="figures.used")
    remaining_gpu_hours = hours_field(source="figures.remaining", help_text="granted − used")
    unallocated_gpu_hours = hours_field(source="figures.unallocated", allow_null=True, help_text="budget − granted (org and pool rows; null otherwise)")
    requested_gpu_hours = hours_field(source="figures.requested")
    open_requested_gpu_hours = hours_field(source="figures.open_requested", help_text="requested and not yet decided")
    has_grant = serializers.BooleanField(source="figures.has_grant")

    def to_representation(self, row: dict) -> dict:
        data = super().to_representation(row)
        if not row["has_budget"]:  # areas and ideas have grants, not a budget
            data["budget_gpu_hours"] = data["unallocated_gpu_hours"] = None
        return data


class FiguresSerializer(serializers.Serializer):
    cycle = serializers.IntegerField()
    level = serializers.CharField()
    results = FigureRowSerializer(many=True)


class RequestListQuerySerializer(serializers.Serializer):
    """The review desk's filters, for scripts: the same names and values as its URL."""

    cycle = serializers.IntegerField(required=False, help_text="default: the current cycle")
    area = serializers.SlugField(required=False)
    pool = serializers.CharField(required=False)
    stage = serializers.ChoiceField(choices=Stage.choices, required=False)
    status = serializers.ChoiceField(choices=["open", "decided", "all", "approved", "trimmed", "refused"], default="all")
    requester = serializers.CharField(required=False, help_text="a username")
    sort = serializers.ChoiceField(choices=[f"{sign}{name}" for name in ("id", "area", "idea", "requester", "pool", "stage", "hours", "age") for sign in ("", "-")], default="-hours")
    page = serializers.IntegerField(required=False, min_value=1)
