"""200 concurrent submissions against PostgreSQL get 200 distinct, gap-free keys."""
import threading

import pytest
from django.db import connection

from ideas import services
from ideas.models import Idea

SUBMISSIONS = 200
THREADS = 20


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_submissions_get_gap_free_unique_keys(submitter, area):
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def submit(count: int) -> None:
        try:
            start.wait()
            for index in range(count):
                services.idea_create(submitter=submitter, area=area, title=f"Concurrent {index}", summary="race")
        except BaseException as error:  # reported below; a thread cannot fail the test itself
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(SUBMISSIONS // THREADS,)) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    keys = sorted(Idea.objects.values_list("key", flat=True))
    assert keys == [f"IDEA-{number:04d}" for number in range(1, SUBMISSIONS + 1)]
