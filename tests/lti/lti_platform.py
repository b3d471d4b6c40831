"""A small LTI 1.3 platform (an LMS stand-in) of the tests' own, served on a free loopback port by a
thread with http.server: its RS256 key and JWKS, the OIDC auth endpoint (answers with the auto-posting
id_token form an LMS sends), the OAuth2 token endpoint (checks the tool's signed client assertion
against the tool's JWKS), AGS line items and scores, NRPS memberships, and the deep-linking return
endpoint (checks the tool's signed answer). Every request it receives is recorded."""
from __future__ import annotations

import html
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
MEMB = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INSTRUCTOR, LEARNER = MEMB + "Instructor", MEMB + "Learner"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key, kid):
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return jwk


class Platform:
    client_id = "tool-client-1"
    deployment_id = "dep-1"

    def __init__(self, tool_jwks):
        self.tool_jwks = tool_jwks  # () -> the tool's JWKS dict (its /lti/jwks.json)
        self.key, self.kid = new_key(), "platform-key-1"
        self.received: list[tuple[str, str, dict | str]] = []  # (method, path, body)
        self.line_items: dict[str, dict] = {}
        self.scores: list[dict] = []
        self.members: list[dict] = []
        self.deep_link_answers: list[dict] = []
        self.reject_scores: tuple[int, str] | None = None
        self.pending: dict[str, dict] = {}  # login_hint -> launch claims
        self.tamper = None  # (claims, header) -> (claims, header, signing key): bad tokens for the refusal tests
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.issuer = self.url
        self.context_id = "ctx-101"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # --- what the test sets up ---------------------------------------------------------------------

    def jwks(self):
        return {"keys": [public_jwk(self.key, self.kid)]}

    def user(self, sub, given="Ada", family="Lovelace", email=None, roles=(LEARNER,)):
        return {"sub": sub, "given_name": given, "family_name": family, "name": f"{given} {family}",
                "email": email or f"{sub}@lms.example", "roles": list(roles)}

    def login_params(self, user, *, message_type="LtiResourceLinkRequest", resource_link="rl-1", custom=None,
                     deployment_id=None, target="", extra=None, lineitem=None):
        """Prepare a launch for ``user``; returns the OIDC third-party initiated login parameters."""
        hint = uuid.uuid4().hex
        claims = {
            "sub": user["sub"], "given_name": user["given_name"], "family_name": user["family_name"],
            "name": user["name"], "email": user["email"],
            LTI + "message_type": message_type, LTI + "version": "1.3.0",
            LTI + "deployment_id": deployment_id or self.deployment_id,
            LTI + "roles": user["roles"],
            LTI + "context": {"id": self.context_id, "label": "LLM101", "title": "Large Language Models",
                              "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]},
            LTI + "target_link_uri": target,
            LTI + "launch_presentation": {"document_target": "iframe", "return_url": self.url + "/return"},
            "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
                "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                          "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
                          "https://purl.imsglobal.org/spec/lti-ags/scope/score"],
                "lineitems": f"{self.url}/ctx/{self.context_id}/lineitems",
                **({"lineitem": lineitem} if lineitem else {})},
            "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
                "context_memberships_url": f"{self.url}/ctx/{self.context_id}/memberships",
                "service_versions": ["2.0"]},
        }
        if message_type == "LtiResourceLinkRequest":
            claims[LTI + "resource_link"] = {"id": resource_link, "title": "Activity"}
        else:
            claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
                "deep_link_return_url": self.url + "/deep_link_return",
                "accept_types": ["ltiResourceLink"], "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": True, "data": "dl-data-1"}
        if custom:
            claims[LTI + "custom"] = custom
        claims.update(extra or {})
        self.pending[hint] = claims
        return {"iss": self.issuer, "login_hint": hint, "target_link_uri": target or "x", "client_id": self.client_id,
                "lti_message_hint": "m-" + hint, "lti_deployment_id": deployment_id or self.deployment_id}

    # --- the platform's side of OIDC ---------------------------------------------------------------

    def id_token(self, query: dict) -> tuple[str, str, str]:
        """The auth endpoint's answer to the tool's OIDC auth request: (redirect_uri, id_token, state)."""
        assert query["response_type"] == "id_token" and query["scope"] == "openid", query
        assert query["client_id"] == self.client_id and query["prompt"] == "none"
        claims = dict(self.pending[query["login_hint"]])
        now = int(time.time())
        claims.update({"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300,
                       "nonce": query["nonce"], "azp": self.client_id})
        header, key = {"kid": self.kid}, self.key
        if self.tamper:
            claims, header, key = self.tamper(claims, header)
        token = jwt.encode(claims, key, algorithm="RS256", headers=header)
        return query["redirect_uri"], token, query["state"]

    def _handler(platform):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code, body, ctype="application/json", headers=None):
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n).decode() if n else ""
                ctype = self.headers.get("Content-Type", "")
                if "json" in ctype:
                    return json.loads(raw)
                return {k: v[0] for k, v in parse_qs(raw).items()}

            def _authorised(self, scope):
                auth = self.headers.get("Authorization", "")
                ok = auth.startswith("Bearer ") and scope in platform.tokens.get(auth[7:], ())
                if not ok:
                    self._send(401, {"error": "unauthorized"})
                return ok

            def do_GET(self):
                parts = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(parts.query).items()}
                platform.received.append(("GET", parts.path, q))
                if parts.path == "/lms":  # an LMS course page that launches the tool in an iframe
                    page = ('<!doctype html><html><body><h1>LMS course page</h1>'
                            f'<iframe id="tool" title="tool" src="{html.escape(q["src"])}" width="1200" height="800">'
                            '</iframe></body></html>')
                    return self._send(200, page, "text/html")
                if parts.path == "/jwks":
                    return self._send(200, platform.jwks())
                if parts.path == "/auth":
                    redirect_uri, token, state = platform.id_token(q)
                    page = (f'<!doctype html><html><body><form id="f" method="post" action="{html.escape(redirect_uri)}">'
                            f'<input type="hidden" name="id_token" value="{token}">'
                            f'<input type="hidden" name="state" value="{html.escape(state)}">'
                            '<button type="submit">Continue</button></form>'
                            '<script>document.getElementById("f").submit()</script></body></html>')
                    return self._send(200, page, "text/html")
                if re.fullmatch(r"/ctx/[^/]+/lineitems", parts.path):
                    if not self._authorised("https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"):
                        return None
                    items = [li for li in platform.line_items.values()
                             if ("resource_id" not in q or li.get("resourceId") == q["resource_id"])
                             and ("tag" not in q or li.get("tag") == q["tag"])]
                    return self._send(200, items, "application/vnd.ims.lis.v2.lineitemcontainer+json")
                if re.fullmatch(r"/ctx/[^/]+/memberships", parts.path):
                    if not self._authorised(
                            "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"):
                        return None
                    return self._send(200, {"id": platform.url + parts.path,
                                            "context": {"id": platform.context_id},
                                            "members": platform.members},
                                      "application/vnd.ims.lti-nrps.v2.membershipcontainer+json")
                return self._send(404, {"error": "not found"})

            def do_POST(self):
                parts = urlsplit(self.path)
                body = self._body()
                platform.received.append(("POST", parts.path, body))
                if parts.path == "/token":
                    claims = jwt.decode(body["client_assertion"], _tool_key(platform.tool_jwks(), body["client_assertion"]),
                                        algorithms=["RS256"], audience=platform.url + "/token")
                    assert claims["iss"] == claims["sub"] == platform.client_id
                    token = uuid.uuid4().hex
                    platform.tokens[token] = body["scope"].split()
                    return self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                                            "scope": body["scope"]})
                if re.fullmatch(r"/ctx/[^/]+/lineitems", parts.path):
                    if not self._authorised("https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"):
                        return None
                    item_id = f"{platform.url}{parts.path}/{len(platform.line_items) + 1}"
                    item = {**body, "id": item_id}
                    platform.line_items[item_id] = item
                    return self._send(201, item, "application/vnd.ims.lis.v2.lineitem+json")
                if re.fullmatch(r"/ctx/[^/]+/lineitems/\d+/scores", parts.path):
                    if not self._authorised("https://purl.imsglobal.org/spec/lti-ags/scope/score"):
                        return None
                    if platform.reject_scores:
                        code, text = platform.reject_scores
                        return self._send(code, {"error": text})
                    platform.scores.append({"lineitem": platform.url + parts.path[: -len("/scores")], **body})
                    return self._send(200, {})
                if parts.path == "/deep_link_return":
                    claims = jwt.decode(body["JWT"], _tool_key(platform.tool_jwks(), body["JWT"]), algorithms=["RS256"],
                                        audience=platform.issuer)
                    platform.deep_link_answers.append(claims)
                    return self._send(200, "<!doctype html><p id='dl-done'>Activity added to the LMS.</p>", "text/html")
                if parts.path == "/return":
                    return self._send(200, "<!doctype html><p>Back in the LMS.</p>", "text/html")
                return self._send(404, {"error": "not found"})

        platform.tokens = {}
        return Handler

    # --- registration here ---------------------------------------------------------------------------

    def register(self):
        from lti_tool.models import LtiDeployment, LtiRegistration

        reg = LtiRegistration.objects.create(
            name="Test LMS", issuer=self.issuer, client_id=self.client_id, auth_url=self.url + "/auth",
            token_url=self.url + "/token", keyset_url=self.url + "/jwks")
        LtiDeployment.objects.create(registration=reg, deployment_id=self.deployment_id, is_active=True)
        return reg


def _tool_key(jwks, token):
    kid = jwt.get_unverified_header(token).get("kid")
    for k in jwks["keys"]:
        if k.get("kid") == kid:
            return RSAAlgorithm.from_jwk(json.dumps(k))
    raise AssertionError(f"the tool signed with kid {kid!r}, which its JWKS does not hold")


def query_of(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def form_fields(page: str) -> dict:
    return dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page))


__all__ = ["Platform", "INSTRUCTOR", "LEARNER", "TA", "new_key", "public_jwk", "query_of", "form_fields", "urlencode"]
