from django.contrib import admin

from ideas.models import Activity, Area, AreaMembership, Comment, Decision, Idea, PicHandover, Tag, Transition


class MembershipInline(admin.TabularInline):
    model = AreaMembership
    extra = 0
    autocomplete_fields = ["user"]


class HandoverInline(admin.TabularInline):
    model = PicHandover
    extra = 0
    can_delete = False
    readonly_fields = ["from_user", "to_user", "by", "note", "created_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # handovers go through the areas page so history stays complete


@admin.register(Area)
class AreaAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "pic", "restricted"]
    list_filter = ["restricted"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    # The PIC changes only through a handover, which records who and when.
    readonly_fields = ["pic"]
    inlines = [MembershipInline, HandoverInline]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields


class TransitionInline(admin.TabularInline):
    model = Transition
    extra = 0
    can_delete = False
    readonly_fields = ["from_status", "to_status", "actor", "note", "decision", "created_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # moves go through the lifecycle service


@admin.register(Idea)
class IdeaAdmin(admin.ModelAdmin):
    list_display = ["key", "title", "area", "status", "submitter", "created_at"]
    list_filter = ["status", "area"]
    search_fields = ["key", "title", "summary"]
    readonly_fields = ["key", "status", "created_at", "updated_at"]
    exclude = ["number"]
    autocomplete_fields = ["watchers", "submitter"]
    list_select_related = ["area", "submitter"]
    inlines = [TransitionInline]

    def has_add_permission(self, request) -> bool:
        return False  # keys are issued by idea_create only


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    list_display = ["idea", "author", "created_at"]
    list_select_related = ["idea", "author"]
    search_fields = ["body", "idea__key"]


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = ["idea", "outcome", "decided_by", "created_at"]
    list_select_related = ["idea", "decided_by"]


admin.site.register(Tag, search_fields=["name"])
admin.site.register(Activity, list_display=["idea", "actor", "kind", "created_at"], list_select_related=["idea", "actor"])
