"""Admin: pools are managed here; the ledger and decision logs are read-only (they are append-only history)."""
from django.contrib import admin

from compute.models import Allocation, AllocationChange, Cycle, LaunchHold, Pool, Request, Review, UsageEntry


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin):
    list_display = ["name", "gpu_type", "gpu_count"]


@admin.register(Cycle)
class CycleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "phase", "start", "end"]
    list_filter = ["phase"]
    readonly_fields = ["start", "end", "phase", "created_at"]  # phases move through cycle_set_phase / beat


class ReadOnlyAdmin(admin.ModelAdmin):
    """History written by the services; the admin only shows it."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyAdmin):
    list_display = ["cycle", "pool", "level", "area", "idea", "gpu_hours"]
    list_filter = ["level", "pool", "cycle"]
    list_select_related = ["cycle", "pool", "area", "idea"]


@admin.register(AllocationChange)
class AllocationChangeAdmin(ReadOnlyAdmin):
    list_display = ["allocation", "source", "before", "after", "actor", "created_at"]
    list_select_related = ["allocation__pool", "allocation__area", "allocation__idea", "actor"]


@admin.register(Request)
class RequestAdmin(ReadOnlyAdmin):
    list_display = ["pk", "cycle", "area", "idea", "pool", "gpu_hours", "stage", "status", "granted_hours", "requester"]
    list_filter = ["status", "stage", "pool"]
    list_select_related = ["cycle", "area", "idea", "pool", "requester"]


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    list_display = ["request", "decision", "reviewer", "requested_hours", "granted_hours", "grant_before", "grant_after", "created_at"]
    list_select_related = ["request__area", "request__idea", "reviewer"]


@admin.register(UsageEntry)
class UsageEntryAdmin(ReadOnlyAdmin):
    list_display = ["attempt_key", "cycle", "area", "idea", "pool", "gpus", "segment_start", "segment_end", "gpu_hours"]
    list_filter = ["pool"]
    list_select_related = ["cycle", "area", "idea", "pool"]


@admin.register(LaunchHold)
class LaunchHoldAdmin(ReadOnlyAdmin):
    list_display = ["launch_key", "allocation", "estimated_hours", "outstanding_hours", "overridden_by", "created_at", "released_at"]
    list_select_related = ["allocation__pool", "allocation__area", "allocation__idea", "overridden_by"]
