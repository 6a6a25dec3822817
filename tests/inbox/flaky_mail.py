"""A mail backend whose first send fails like a dropped SMTP connection; later sends write files.

State lives in ``INBOX_TEST_MAIL_DIR`` (a marker file and one file per email), so it works the same inside a
Celery worker process, across its retries, and in the test process.
"""
import os
from pathlib import Path
from smtplib import SMTPServerDisconnected

from django.core.mail.backends.filebased import EmailBackend


class FailOnceBackend(EmailBackend):
    def __init__(self, **kwargs):
        super().__init__(file_path=os.environ["INBOX_TEST_MAIL_DIR"], **kwargs)

    def send_messages(self, email_messages):
        try:
            (Path(self.file_path) / "failed-once").open("x").close()
        except FileExistsError:
            return super().send_messages(email_messages)
        raise SMTPServerDisconnected("test: the mail server closed the connection")


def sent_mail(directory: Path) -> list[str]:
    """The emails written so far, as raw text. The file backend may append several to one file (its names
    are per second and connection), ending each with a line of 79 dashes."""
    texts = [path.read_text() for path in sorted(directory.glob("*.log"))]
    return [mail.strip() for text in texts for mail in text.split("-" * 79) if mail.strip()]
