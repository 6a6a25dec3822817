"""What a review means as messages: the requester and the area's PIC hear the reviewer's decision
(``ideas.notifications`` for the rules every notification follows)."""
from django.urls import reverse

from compute.models import Review
from ideas.notifications import event_for_viewers
from inbox import events
from inbox.events import Event
from inbox.models import Message

REQUEST_REVIEWED = "request_reviewed"  # ref: a compute.Review


def publish_request_reviewed(review_id: int) -> None:
    """Queue delivery of review ``review_id`` after commit."""
    events.publish(REQUEST_REVIEWED, review_id)


@events.source(REQUEST_REVIEWED)
def request_reviewed_event(review_id: int) -> Event | None:
    review = Review.objects.select_related("request__area", "request__idea", "request__pool", "request__cycle",
                                           "reviewer").filter(pk=review_id).first()
    if review is None:
        return None
    request = review.request
    lines = [
        f"{review.reviewer} {request.get_status_display().lower()} request #{request.pk} for {request.target_label}"
        f" ({request.pool.name}, cycle {request.cycle}).",
        f"Requested {review.requested_hours} GPU-h, granted {review.granted_hours} GPU-h.",
    ]
    if review.comment:
        lines += ["", review.comment]
    return event_for_viewers(
        kind=Message.Kind.REQUEST_REVIEWED, key=f"request-reviewed:{review.pk}",
        recipients={request.requester_id, request.area.pic_id}, actor_id=review.reviewer_id, areas=[request.area],
        subject=f"Compute request #{request.pk} for {request.target_label} {request.get_status_display().lower()}: "
                f"{review.granted_hours} of {review.requested_hours} GPU-h",
        lines=lines, link=reverse("compute:budget", args=[request.area.slug]),
    )
