"""A real OpenID Connect provider on 127.0.0.1 for tests (built with Authlib's JOSE).

It implements what ``st.login`` uses: discovery (``/.well-known/openid-configuration``), the
authorization-code flow (``/authorize`` signs in the configured user at once and redirects
back with a code), ``/token`` (checks the client secret and the code, returns an RS256-signed
ID token with the request's nonce), ``/jwks`` and ``/userinfo``. Every token request is
recorded in ``token_requests``.

Usage::

    with OIDCProvider(email="ana@example.org") as idp:
        idp.metadata_url, idp.client_id, idp.client_secret
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, jwt


class OIDCProvider:
    """An OIDC provider signing in one user (``sub``, ``email``, ``name``)."""

    def __init__(self, *, sub: str = "user-1", email: str = "ana@example.org",
                 name: str = "Ana Analyst") -> None:
        self.user = {"sub": sub, "email": email, "name": name, "email_verified": True}
        self.client_id = "emerflow-test"
        self.client_secret = secrets.token_urlsafe(16)
        self.key = JsonWebKey.generate_key("RSA", 2048, is_private=True)
        self.kid = "k1"
        self.codes: dict[str, dict[str, Any]] = {}
        self.token_requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _json(self, doc: dict, status: int = 200) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._json(outer.metadata())
                elif url.path == "/jwks":
                    pub = outer.key.as_dict(is_private=False)
                    self._json({"keys": [{**pub, "kid": outer.kid, "use": "sig",
                                          "alg": "RS256"}]})
                elif url.path == "/authorize":
                    if q.get("client_id") != outer.client_id:
                        self._json({"error": "unauthorized_client"}, 400)
                        return
                    code = secrets.token_urlsafe(16)
                    outer.codes[code] = {"nonce": q.get("nonce"),
                                         "redirect_uri": q.get("redirect_uri")}
                    target = q["redirect_uri"] + "?" + urlencode(
                        {"code": code, "state": q.get("state", "")})
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.end_headers()
                elif url.path == "/userinfo":
                    self._json(outer.user)
                else:
                    self._json({"error": "not_found"}, 404)

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                if urlparse(self.path).path != "/token":
                    self._json({"error": "not_found"}, 404)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                client_id, client_secret = form.get("client_id"), form.get("client_secret")
                auth = self.headers.get("Authorization") or ""
                if auth.startswith("Basic "):
                    raw = base64.b64decode(auth[6:]).decode()
                    client_id, _, client_secret = raw.partition(":")
                ok_client = (client_id == outer.client_id
                             and client_secret == outer.client_secret)
                grant = outer.codes.pop(form.get("code", ""), None)
                outer.token_requests.append({"client_ok": ok_client,
                                             "code_ok": grant is not None})
                if not ok_client or grant is None or \
                        grant["redirect_uri"] != form.get("redirect_uri"):
                    self._json({"error": "invalid_grant"}, 400)
                    return
                now = int(time.time())
                claims = {"iss": outer.issuer, "aud": outer.client_id, "iat": now,
                          "exp": now + 600, "nonce": grant["nonce"], **outer.user}
                id_token = jwt.encode({"alg": "RS256", "kid": outer.kid}, claims, outer.key)
                self._json({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                            "expires_in": 600, "scope": "openid profile email",
                            "id_token": id_token.decode()})

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"],
            "claims_supported": ["sub", "email", "name"],
        }

    def __enter__(self) -> OIDCProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
