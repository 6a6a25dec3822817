"""The inbox page and its htmx actions. Thin: parse, one service or selector call, render."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from core.forms import apply_service_error
from core.http import is_htmx
from inbox import selectors, services, webhook_services
from inbox.forms import EmailPreferenceForm, WebhookForm

DELIVERIES_PER_PAGE = 50


@login_required
def index(request: HttpRequest) -> HttpResponse:
    page = selectors.inbox_page(request.user, number=request.GET.get("page"))
    form = EmailPreferenceForm(initial={"email": selectors.email_enabled(request.user)})
    return render(request, "inbox/inbox.html", {"page": page, "form": form})


@login_required
def message_open(request: HttpRequest, message_id: int) -> HttpResponse:
    """Follow a message's link; opening it marks it read, as in any mail client."""
    message = services.message_mark_read(user=request.user, message_id=message_id)
    # the apps' notification builders write site-relative links; the check keeps this from ever being an open redirect.
    if not url_has_allowed_host_and_scheme(message.link, allowed_hosts={request.get_host()}):
        return redirect("inbox:index")
    return redirect(message.link)


@require_POST
@login_required
def message_read(request: HttpRequest, message_id: int) -> HttpResponse:
    message = services.message_mark_read(user=request.user, message_id=message_id)
    if is_htmx(request):
        context = {"message": message, "unread_count": selectors.unread_count(request.user)}
        return render(request, "inbox/_message_read.html", context)
    return redirect("inbox:index")


@require_POST
@login_required
def mark_all_read(request: HttpRequest) -> HttpResponse:
    count = services.messages_mark_all_read(user=request.user)
    if is_htmx(request):
        page = selectors.inbox_page(request.user, number=request.GET.get("page"))
        return render(request, "inbox/_messages.html", {"page": page, "unread_count": 0, "oob_badge": True})
    messages.success(request, f"Marked {count} message{'s' if count != 1 else ''} read.")
    return redirect("inbox:index")


@require_POST
@login_required
def email_preference(request: HttpRequest) -> HttpResponse:
    form = EmailPreferenceForm(request.POST)
    form.is_valid()  # a missing checkbox means "off": the form has no invalid input
    services.email_preference_set(user=request.user, enabled=form.cleaned_data["email"])
    if form.cleaned_data["email"]:
        messages.success(request, "Email notifications on.")
    else:
        messages.success(request, "Email notifications off; the inbox still collects everything.")
    return redirect("inbox:index")


# ------------------------------------------------------------------------------------------- webhooks


@login_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    """One's webhooks, and a form to add one (the form comes back with the errors and what was typed)."""
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            webhook = webhook_services.webhook_create(owner=request.user, **form.cleaned_data)
        except ValidationError as error:
            apply_service_error(form, error)
        else:
            messages.success(request, f"Webhook “{webhook.name}” added; a ping is on its way.")
            return redirect("inbox:webhook_detail", webhook.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "inbox/webhooks.html", {"form": form, "webhooks": list(selectors.webhooks_of(request.user))},
                  status=status)


@login_required
def webhook_detail(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = selectors.webhook_get_for_user(user=request.user, webhook_id=webhook_id)
    page = Paginator(selectors.webhook_deliveries(webhook), DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "inbox/webhook_detail.html", {"webhook": webhook, "page": page})


@require_POST
@login_required
def webhook_ping(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = selectors.webhook_get_for_user(user=request.user, webhook_id=webhook_id)
    webhook_services.webhook_ping(webhook=webhook)
    messages.success(request, "Ping queued; it shows in the delivery log below.")
    return redirect("inbox:webhook_detail", webhook.pk)


@require_POST
@login_required
def webhook_delete(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = selectors.webhook_get_for_user(user=request.user, webhook_id=webhook_id)
    webhook_services.webhook_delete(webhook=webhook)
    messages.success(request, f"Webhook “{webhook.name}” deleted.")
    return redirect("inbox:webhooks")
