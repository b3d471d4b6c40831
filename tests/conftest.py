"""Shared fixtures: a course with an instructor, a TA and students, and logged-in clients.

Apps add their own fixtures in conftest.py files of their test folders.
"""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """PBKDF2 costs ~0.3 s a user on this machine; the tests only need hashing to work."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, **extra):
        extra.setdefault("email", f"{username}@example.edu")
        return django_user_model.objects.create_user(username=username, password="pw-" + username, **extra)

    return make


@pytest.fixture
def course(db):
    from courseplatform.courses.models import Course

    return Course.objects.create(slug="llms", title="Deep Dive into LLMs", term="WS 2026/27")


@pytest.fixture
def other_course(db):
    from courseplatform.courses.models import Course

    return Course.objects.create(slug="other", title="Another Course")


def _member(course, user, role):
    from courseplatform.courses.models import Membership

    Membership.objects.create(course=course, user=user, role=role)
    return user


@pytest.fixture
def instructor(course, make_user):
    return _member(course, make_user("prof"), "instructor")


@pytest.fixture
def ta(course, make_user):
    return _member(course, make_user("tara"), "ta")


@pytest.fixture
def student(course, make_user):
    return _member(course, make_user("alice", first_name="Alice", last_name="Adams"), "student")


@pytest.fixture
def other_student(course, make_user):
    return _member(course, make_user("bob", first_name="Bob", last_name="Brown"), "student")


@pytest.fixture
def outsider(other_course, make_user):
    """A student of another course only."""
    return _member(other_course, make_user("eve"), "student")


@pytest.fixture
def client_for(client):
    """client_for(user) -> a test client logged in as that user (a fresh client each call)."""
    from django.test import Client

    def make(user):
        c = Client()
        c.force_login(user)
        return c

    return make
