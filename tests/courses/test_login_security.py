"""Logins: Argon2id hashes (with the measured cost), and failed-login throttling per account and per address."""
from __future__ import annotations

import pytest
from django.contrib.auth.hashers import check_password, identify_hasher, make_password
from django.urls import reverse

from courseplatform import settings as project_settings

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def real_hashers(settings):
    """The suite's conftest speeds tests up with MD5; these tests check the site's own hashers."""
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS


def test_passwords_are_hashed_with_argon2id_at_the_chosen_cost():
    encoded = make_password("correct horse battery staple")
    assert encoded.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert identify_hasher(encoded).algorithm == "argon2"
    assert check_password("correct horse battery staple", encoded)
    assert not check_password("wrong", encoded)


def test_old_pbkdf2_hash_still_logs_in_and_is_upgraded(client, django_user_model):
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    user = django_user_model.objects.create(username="old")
    user.password = PBKDF2PasswordHasher().encode("pw-old-123", PBKDF2PasswordHasher().salt())
    user.save()
    r = client.post(reverse("login"), {"username": "old", "password": "pw-old-123"})
    assert r.status_code == 302
    user.refresh_from_db()
    assert user.password.startswith("argon2$argon2id$")


def _fail(client, username, ip):
    return client.post(reverse("login"), {"username": username, "password": "nope"}, REMOTE_ADDR=ip)


def test_the_limits_are_ten_per_account_and_a_hundred_per_address(settings):
    assert project_settings.AXES_USERNAME_FAILURE_LIMIT == 10
    assert project_settings.AXES_IP_FAILURE_LIMIT == 100
    assert project_settings.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]


def test_an_account_is_locked_after_repeated_failures_from_any_address(client, django_user_model, settings):
    django_user_model.objects.create_user("victim", password="pw-victim-123")
    for i in range(settings.AXES_USERNAME_FAILURE_LIMIT - 1):
        assert _fail(client, "victim", f"10.0.0.{i + 1}").status_code == 200
    assert _fail(client, "victim", "10.0.1.1").status_code == 429
    # Even the right password is refused while the account is locked, from yet another address.
    r = client.post(reverse("login"), {"username": "victim", "password": "pw-victim-123"}, REMOTE_ADDR="10.0.2.1")
    assert r.status_code == 429
    assert b"Too many failed logins" in r.content
    # Another account is not affected.
    django_user_model.objects.create_user("other", password="pw-other-123")
    r = client.post(reverse("login"), {"username": "other", "password": "pw-other-123"}, REMOTE_ADDR="10.0.3.1")
    assert r.status_code == 302


def test_an_address_is_locked_after_failures_across_many_accounts(client, django_user_model, settings):
    django_user_model.objects.create_user("someone", password="pw-someone-123")
    for i in range(settings.AXES_IP_FAILURE_LIMIT - 1):
        assert _fail(client, f"guess{i}", "192.0.2.7").status_code == 200
    # One below the address limit, the right password still works from there ...
    r = client.post(reverse("login"), {"username": "someone", "password": "pw-someone-123"}, REMOTE_ADDR="192.0.2.7")
    assert r.status_code == 302
    client.logout()
    # ... (a success clears that address's count, axes' AXES_RESET_ON_SUCCESS) so a guesser needs
    # the full limit again; at the limit the address is locked for every account.
    for i in range(settings.AXES_IP_FAILURE_LIMIT):
        _fail(client, f"guess{i}", "192.0.2.7")
    r = client.post(reverse("login"), {"username": "someone", "password": "pw-someone-123"}, REMOTE_ADDR="192.0.2.7")
    assert r.status_code == 429
    r = client.post(reverse("login"), {"username": "someone", "password": "pw-someone-123"}, REMOTE_ADDR="192.0.2.8")
    assert r.status_code == 302


def test_a_successful_login_resets_the_account_counter(client, django_user_model, settings):
    django_user_model.objects.create_user("typo", password="pw-typo-123")
    for _ in range(settings.AXES_USERNAME_FAILURE_LIMIT - 2):
        _fail(client, "typo", "10.9.0.1")
    assert client.post(reverse("login"), {"username": "typo", "password": "pw-typo-123"},
                       REMOTE_ADDR="10.9.0.1").status_code == 302
    client.logout()
    for _ in range(settings.AXES_USERNAME_FAILURE_LIMIT - 2):
        assert _fail(client, "typo", "10.9.0.1").status_code == 200


def test_a_lecture_hall_behind_one_address_is_not_locked_out_by_typos(client, django_user_model, settings):
    """300 students share the hall's NAT address: 40 of them mistype their password twice each
    (80 failures from one address, 8 times the account limit); nobody is locked, every one of
    them still logs in, and a student who kept guessing is locked alone."""
    address = "203.0.113.50"
    students = [django_user_model.objects.create_user(f"hall{i:02d}", password=f"pw-hall-{i:02d}-x")
                for i in range(40)]
    for s in students:
        for _ in range(2):
            assert _fail(client, s.username, address).status_code == 200
    for i, s in enumerate(students):
        r = client.post(reverse("login"), {"username": s.username, "password": f"pw-hall-{i:02d}-x"},
                        REMOTE_ADDR=address)
        assert r.status_code == 302, s.username
        client.logout()
    django_user_model.objects.create_user("guesser", password="pw-guesser-1")
    for _ in range(settings.AXES_USERNAME_FAILURE_LIMIT):
        _fail(client, "guesser", address)
    assert client.post(reverse("login"), {"username": "guesser", "password": "pw-guesser-1"},
                       REMOTE_ADDR=address).status_code == 429
    r = client.post(reverse("login"), {"username": "hall00", "password": "pw-hall-00-x"}, REMOTE_ADDR=address)
    assert r.status_code == 302
