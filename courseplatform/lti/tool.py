"""The protocol side, on django-lti (lti_tool) and PyLTI1p3: how a launch is validated here.

django-lti's defaults are tightened in three places:

* ``StrictToolConfig``: an unknown (or inactive) deployment id is refused. django-lti would create an
  inactive deployment row for it; here a deployment exists only once an admin registered it.
* ``ToolMessageLaunch``: the id_token's nonce is consumed when the launch is accepted (PyLTI1p3 only
  checks that the nonce was issued, so the same id_token and state could be posted again); the
  platform's JWKS is cached for ``LTI_JWKS_CACHE_S`` and fetched again once when a token names a key
  the cached set does not hold (the platform rotated its key).
* ``classify``: PyLTI1p3's exception messages become one refusal reason each, for the refusal page and
  the log line.

Launch state (OIDC state, nonces, the validated launch for deep linking) lives in the cache named by
``LTI_CACHE`` (settings): Redis where the site has one, a file cache otherwise, so that every web
process sees it.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from lti_tool.models import Key, LtiDeployment
from lti_tool.utils import DjangoToolConfig, _prepare_deployment
from pylti1p3.contrib.django import DjangoCacheDataStorage, DjangoMessageLaunch
from pylti1p3.exception import LtiException

log = logging.getLogger("courseplatform.lti")


def cache():
    return caches[settings.LTI_CACHE]


def storage() -> DjangoCacheDataStorage:
    return DjangoCacheDataStorage(cache_name=settings.LTI_CACHE)


def ensure_key() -> Key:
    """The tool's signing key: generated (RSA 2048) the first time anything needs it."""
    key = Key.objects.active().order_by("-datetime_created").first()
    return key or Key.objects.generate()


class StrictToolConfig(DjangoToolConfig):
    def _deployment(self, lookups):
        self.deployment = LtiDeployment.objects.filter(is_active=True, **lookups).first()
        return _prepare_deployment(self.deployment) if self.deployment else None

    def find_deployment(self, iss, deployment_id):
        return self._deployment({"registration__uuid": self.registration_uuid, "registration__issuer": iss,
                                 "registration__is_active": True, "deployment_id": deployment_id})

    def find_deployment_by_params(self, iss, deployment_id, client_id, *args, **kwargs):
        lookups = {"registration__issuer": iss, "registration__client_id": client_id,
                   "registration__is_active": True, "deployment_id": deployment_id}
        if self.registration_uuid is not None:
            lookups["registration__uuid"] = self.registration_uuid
        return self._deployment(lookups)


class ReplayedNonce(LtiException):
    pass


class ToolMessageLaunch(DjangoMessageLaunch):
    _refetch_keys = False

    def fetch_public_key(self, key_set_url: str):
        key = "lti-jwks-" + hashlib.sha256(key_set_url.encode()).hexdigest()
        if not self._refetch_keys:
            cached = cache().get(key)
            if cached:
                return cached
        try:
            resp = self._requests_session.get(key_set_url, timeout=settings.LTI_HTTP_TIMEOUT_S)
            keys = resp.json()
        except Exception as exc:  # network error, not JSON
            raise LtiException(f"Could not read the platform's JWKS at {key_set_url}: {exc}") from exc
        if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
            raise LtiException(f"The platform's JWKS at {key_set_url} holds no key set")
        cache().set(key, keys, settings.LTI_JWKS_CACHE_S)
        return keys

    def validate_jwt_signature(self):
        try:
            return super().validate_jwt_signature()
        except LtiException as exc:
            if "Unable to find public key" not in str(exc) or self._refetch_keys:
                raise
        # The platform may have rotated its key since the set was cached: read it once more.
        self._refetch_keys = True
        self._registration.set_key_set(None)
        return super().validate_jwt_signature()

    def save_launch_data(self):
        nonce = self._get_jwt_body().get("nonce")
        # cache.add is atomic: of two posts of the same id_token, one wins.
        if not cache().add("lti-nonce-used-" + hashlib.sha256(nonce.encode()).hexdigest(), 1,
                           settings.LTI_NONCE_TTL_S):
            raise ReplayedNonce("Nonce already used")
        return super().save_launch_data()


@dataclass(frozen=True)
class Refusal:
    code: str
    title: str
    text: str
    status: int = 403


REFUSALS = {
    "unknown-platform": Refusal("unknown-platform", "This LMS is not registered here",
                                "The issuer or client id of this launch is not registered with this platform. "
                                "Ask the site's administrator to register your LMS."),
    "unknown-deployment": Refusal("unknown-deployment", "This deployment is not registered here",
                                  "The LMS sent a deployment id that is not registered (or not active) here. "
                                  "Ask the site's administrator to add it to the LMS's registration."),
    "bad-signature": Refusal("bad-signature", "The launch's signature is not valid",
                             "The LMS's message could not be verified with its public key."),
    "unknown-key": Refusal("unknown-key", "The launch was signed with an unknown key",
                           "The key that signed this launch is not in the LMS's published key set."),
    "expired": Refusal("expired", "The launch has expired",
                       "The LMS's message is too old (or not valid yet). Go back to your LMS and open the "
                       "activity again."),
    "replayed": Refusal("replayed", "This launch was already used",
                        "Each launch can be used once. Go back to your LMS and open the activity again."),
    "state": Refusal("state", "The launch did not start in this browser",
                     "The launch's state does not match this browser's. If your browser blocks cookies in "
                     "embedded pages, open the activity in a new window."),
    "roles": Refusal("roles", "Your role in the LMS course is not recognised",
                     "Launches are accepted for instructors, teaching assistants and learners."),
    "not-linked": Refusal("not-linked", "This LMS course is not set up yet",
                          "This LMS course is not linked to a course on this platform yet. Please ask your "
                          "instructor to open the activity once, which sets it up."),
    "invalid": Refusal("invalid", "The launch could not be accepted",
                       "The LMS's message is incomplete or not valid.", 400),
}


def classify(exc: Exception) -> Refusal:
    msg = str(exc)
    if isinstance(exc, ReplayedNonce) or "Invalid Nonce" in msg:
        return REFUSALS["replayed"]
    if "Could not find registration" in msg or "Registration not found" in msg or "Client id not registered" in msg \
            or "Could not find issuer" in msg or '"iss" is empty' in msg:
        return REFUSALS["unknown-platform"]
    if "Unable to find deployment" in msg:
        return REFUSALS["unknown-deployment"]
    if "Unable to find public key" in msg or "JWT KID not found" in msg:
        return REFUSALS["unknown-key"]
    if "Signature has expired" in msg or "not yet valid" in msg:
        return REFUSALS["expired"]
    if "Signature verification failed" in msg or "Can't decode id_token" in msg:
        return REFUSALS["bad-signature"]
    if "State not found" in msg or "Missing state param" in msg or "cookie" in msg:
        return REFUSALS["state"]
    return REFUSALS["invalid"]
