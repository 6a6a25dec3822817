"""Type names shared by every app."""
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

User = AbstractBaseUser | AnonymousUser  # what ``request.user`` may be
