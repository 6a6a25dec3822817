from django.contrib import admin

from experiments.models import Arm, Attempt, Baseline, Run, SlotLease, Study


@admin.register(Baseline)
class BaselineAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "recipe", "backend", "created_at"]
    list_filter = ["backend"]
    search_fields = ["name", "recipe"]


class ArmInline(admin.TabularInline):
    model = Arm
    fields = ["position", "name", "kind", "idea_keys", "patch"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "kind", "baseline", "max_steps", "created_by", "created_at"]
    list_filter = ["kind", "backend"]
    search_fields = ["title", "ideas__key"]
    inlines = [ArmInline]


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = ["number", "state", "host", "slot", "pid", "exit_code", "reason", "started_at", "finished_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["public_id", "study", "seed", "status", "step", "max_steps", "gpu_hours"]
    list_filter = ["status", "backend"]
    search_fields = ["public_id", "config_hash"]
    inlines = [AttemptInline]


@admin.register(SlotLease)
class SlotLeaseAdmin(admin.ModelAdmin):
    list_display = ["host", "slot", "attempt", "acquired_at"]
