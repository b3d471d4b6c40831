"""The site's password hasher: Argon2id (Django's recommended hasher, through argon2-cffi).

Its cost is OWASP's first recommended Argon2id configuration (m=19 MiB, t=2, p=1), chosen by
measurement: on the course's 2-core machine (busy) one verification takes about 65 ms and one hash
about 135 ms, against about 650 ms for Django's default PBKDF2 (1.2M iterations). 300 students
logging in at the start of a lecture on two web workers: about 10 s of CPU instead of 100 s.
Hashes made with other parameters (or PBKDF2) are upgraded at the next successful login.
"""
from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class CourseArgon2PasswordHasher(Argon2PasswordHasher):
    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
