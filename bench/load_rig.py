"""The load benchmark's rig (``bench/load.py``): constants, the app server it starts, the
multi-user OIDC provider, the demo workspace and gene symbols, PostgreSQL, versions."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

with warnings.catch_warnings():  # authlib.jose's deprecation notice
    warnings.simplefilter("ignore")
    from tests.oidc_provider import OIDCProvider  # noqa: E402
from tests.test_browser import CHROMIUM_ARGS, _free_port  # noqa: E402,F401 - re-exported
from tests.test_browser_auth import _secrets  # noqa: E402

DEFAULT_OUT = REPO / "results" / "load"
KNOWLEDGE = REPO / "tests" / "fixtures" / "knowledge"
WORKSPACE = "demo-diseases"
STEPS = ("new_item", "lookup", "create", "predict", "feedback", "confirm", "refine")
#: what each session types in the disease lookup, in turn (all in the knowledge fixtures)
LOOKUPS = ("OMIM:154700", "Marfan syndrome", "Alzheimer's disease", "retinitis pigmentosa",
           "maple syrup urine disease", "ORPHA:558")
GENES_PER_ITERATION = 4
IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
    && app.getAttribute('data-test-connection-state') === 'CONNECTED'
    && !document.querySelector('[data-testid="stSpinner"]');
}"""
ROW_RE = re.compile(r"^\| \d+ concurrent real-browser sessions")  #: README rows of this bench

# ---- the OIDC provider, one identity per browser context ---------------------------------------
class MultiUserOIDCProvider(OIDCProvider):
    """``tests/oidc_provider.py``'s provider signing in the user named by the browser's
    ``idp_user`` cookie on the provider's host (as a real provider knows who is signed in
    there from its own session cookie); the ID token carries that user's claims."""

    COOKIE = "idp_user"

    def __init__(self, users: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.users = users
        outer = self
        base = self.server.RequestHandlerClass

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                from urllib.parse import parse_qs, urlencode, urlparse

                url = urlparse(self.path)
                if url.path != "/authorize":
                    super().do_GET()
                    return
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                jar = SimpleCookie(self.headers.get("Cookie") or "")
                who = jar[outer.COOKIE].value if outer.COOKIE in jar else ""
                if q.get("client_id") != outer.client_id or who not in outer.users:
                    self._json({"error": "unauthorized_client or unknown user"}, 400)
                    return
                import secrets as _secrets_mod

                code = _secrets_mod.token_urlsafe(16)
                outer.codes[code] = {"nonce": q.get("nonce"), "user": outer.users[who],
                                     "redirect_uri": q.get("redirect_uri")}
                self.send_response(302)
                self.send_header("Location", q["redirect_uri"] + "?" + urlencode(
                    {"code": code, "state": q.get("state", "")}))
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                import base64
                import secrets as _secrets_mod
                from urllib.parse import parse_qs, urlparse

                from authlib.jose import jwt

                if urlparse(self.path).path != "/token":
                    self._json({"error": "not_found"}, 404)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                client_id, client_secret = form.get("client_id"), form.get("client_secret")
                auth = self.headers.get("Authorization") or ""
                if auth.startswith("Basic "):
                    client_id, _, client_secret = base64.b64decode(auth[6:]).decode() \
                        .partition(":")
                ok = client_id == outer.client_id and client_secret == outer.client_secret
                grant = outer.codes.pop(form.get("code", ""), None)
                outer.token_requests.append({"client_ok": ok, "code_ok": grant is not None})
                if not ok or grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                    self._json({"error": "invalid_grant"}, 400)
                    return
                now = int(time.time())
                claims = {"iss": outer.issuer, "aud": outer.client_id, "iat": now,
                          "exp": now + 3600, "nonce": grant["nonce"], **grant["user"]}
                token = jwt.encode({"alg": "RS256", "kid": outer.kid}, claims, outer.key)
                self._json({"access_token": _secrets_mod.token_urlsafe(16),
                            "token_type": "Bearer", "expires_in": 3600,
                            "scope": "openid profile email", "id_token": token.decode()})

        self.server.RequestHandlerClass = Handler


def identity(i: int) -> dict[str, Any]:
    return {"sub": f"load-sub-{i:02d}", "email": f"load-{i:02d}@example.org",
            "name": f"Load Analyst {i:02d}", "email_verified": True}


# ---- the server --------------------------------------------------------------------------------
@contextlib.contextmanager
def app_server(run_dir: Path, home: Path, database_url: str | None,
               idp: OIDCProvider | None) -> Iterator[tuple[str, subprocess.Popen]]:
    """``streamlit run <repo>/app/main.py`` started in ``run_dir`` on a free 127.0.0.1 port
    (its ``.streamlit/secrets.toml`` configures ``[auth]`` when ``idp`` is given), no LLM;
    yields its URL and process once healthy."""
    port = _free_port()
    if idp is not None:
        (run_dir / ".streamlit").mkdir(parents=True, exist_ok=True)
        (run_dir / ".streamlit" / "secrets.toml").write_text(_secrets(idp, port))
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "EMERFLOW_LLM_BASE_URL",
                        "DATABASE_URL", "EMERFLOW_LLM_MODEL", "STREAMLIT_SERVER_ADDRESS",
                        "STREAMLIT_SERVER_PORT")}
    env.update(EMERFLOW_HOME=str(home), EMERFLOW_LLM_PROVIDER="none",
               EMERFLOW_DATA=str(KNOWLEDGE), EMERFLOW_RESULTS=str(home / "results"),
               PYTHONPATH=str(REPO))
    if database_url:
        env["DATABASE_URL"] = database_url
    log_path = run_dir / "streamlit.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO / "app" / "main.py"),
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=run_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("streamlit exited: " + log_path.read_text()[-2000:])
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.time() > deadline:
                    raise RuntimeError("streamlit did not become healthy in 120 s")
                time.sleep(0.5)
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def ensure_workspace(workspaces_home: Path) -> Path:
    """``workspaces_home/workspaces/demo-diseases`` built (engine defaults) unless it is."""
    from engine.build import workspace_dir
    from engine.workspace_store import workspace_exists

    if not workspace_exists(workspace_dir(WORKSPACE, workspaces_home)):
        from engine.build import build_dataset_workspace
        from engine.config import WorkspaceConfig
        from engine.text.encoder import TextEncoder

        print(f"building {WORKSPACE} under {workspaces_home} (about a minute)...", flush=True)
        workspaces_home.mkdir(parents=True, exist_ok=True)
        build_dataset_workspace(WORKSPACE, config=WorkspaceConfig(dataset=WORKSPACE),
                                encoder=TextEncoder(), home=workspaces_home)
    return workspaces_home / "workspaces"


def gene_symbols(workspaces: Path) -> list[str]:
    """Symbols naming exactly one gene of the workspace (each resolves by symbol)."""
    import pandas as pd

    sym = pd.read_parquet(workspaces / WORKSPACE / "targets.parquet")["symbol"].astype(str)
    counts = sym.value_counts()
    return sorted(s for s in sym if counts[s] == 1 and re.fullmatch(r"[A-Z0-9-]+", s))




STEP_DEFINITIONS = {
    "new_item": "sidebar New item -> the page with its form",
    "lookup": "type the disease (OMIM id, ORPHA id or name), Enter -> 'Matches (n)', "
              "'Resolve and fill the form' -> 'Resolved:' shown",
    "create": "unique name, CUI cleared, 'Create item' -> 'Created … (#id). Review its "
              "features next.'",
    "predict": "sidebar Predictions -> 'Top genes for …'",
    "feedback": "sidebar Feedback -> the page with its gene search box",
    "confirm": "4 gene symbols in the search box, Enter, 'Add as confirmed' -> 'Found by "
               "search:' naming the 4",
    "refine": "'Refine → Phase I' -> 'Refined to Phase I with 4 decision(s)'",
    "timing": "from the action to the answer visible and the script run finished "
              "(stApp data-test-script-state = notRunning), browser and server on one machine",
    "waiting_on_server": "within a step, the time from a rerun request sent on the page's "
                         "websocket to the server's script-finished message (runs finished "
                         "early for a rerun continue the wait); the rest is the browser's",
}


def postgres_base_url() -> str:
    url = os.environ.get("EMERFLOW_TEST_POSTGRES_URL")
    if url:
        return url
    out = subprocess.run(["bash", str(REPO / ".ci" / "postgres.sh")], capture_output=True,
                         text=True, check=True).stdout
    m = re.search(r"EMERFLOW_TEST_POSTGRES_URL=(\S+)", out)
    if not m:
        raise RuntimeError(f".ci/postgres.sh printed no URL: {out!r}")
    os.environ["EMERFLOW_TEST_POSTGRES_URL"] = m.group(1)
    return m.group(1)


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _chromium_version() -> str | None:
    exe = shutil.which("chromium")
    if not exe:
        return None
    with contextlib.suppress(Exception):
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20)
        return out.stdout.strip() or None
    return None


def _git_sha() -> str | None:
    with contextlib.suppress(Exception):
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, timeout=10).stdout.strip()
    return None


def _dirty() -> list[str] | None:
    """Files of app/, engine/ and db/ that differ from the commit (the server runs them)."""
    with contextlib.suppress(Exception):
        out = subprocess.run(["git", "status", "--porcelain", "--", "app", "engine", "db"],
                             cwd=REPO, capture_output=True, text=True, timeout=10).stdout
        return [ln[3:] for ln in out.splitlines() if ln.strip()]
    return None
