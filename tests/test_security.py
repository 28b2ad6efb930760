"""Security regressions of issue 13: keys, credentials in URLs, settings, injection, binding.

The LLM endpoints here are real HTTP servers on 127.0.0.1 speaking the OpenAI chat-completions
protocol (a minimal one from the standard library: it records every request's Authorization
header, which a ``transformers serve`` cannot show).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.llm import LLMChoice, resolve_settings, settings_summary
from app.llm import test_connection as llm_test_connection
from engine.augment import AugmentationError
from engine.augment.providers import redact_text, redact_url
from engine.settings import Settings, env_names, get_settings

REPO = Path(__file__).resolve().parents[1]
SERVER_KEY = "sk-operator-secret-0123456789abcdef"


class RecordingLLM:
    """A real OpenAI-compatible HTTP server on 127.0.0.1 recording Authorization headers."""

    def __init__(self, status: int = 200, body: dict | None = None) -> None:
        self.auth: list[str | None] = []
        self.status = status
        self.body = body
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                outer.auth.append(self.headers.get("Authorization"))
                payload = outer.body or {
                    "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": '{"ok": true}'}}],
                }
                data = json.dumps(payload).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> RecordingLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def servers() -> Iterator[tuple[RecordingLLM, RecordingLLM]]:
    """(the operator's endpoint, a user's endpoint)."""
    with RecordingLLM() as operator, RecordingLLM() as foreign:
        yield operator, foreign


def _env(operator: RecordingLLM) -> dict[str, str]:
    return {"EMERFLOW_LLM_PROVIDER": "openai", "OPENAI_API_KEY": SERVER_KEY,
            "OPENAI_BASE_URL": operator.base_url, "EMERFLOW_LLM_MAX_RETRIES": "0",
            "EMERFLOW_LLM_TIMEOUT": "5", "EMERFLOW_LLM_MODEL": "m"}


# ---- 1. the server's key never goes to a typed base URL ---------------------------------------
def test_typed_base_url_never_receives_the_server_key(servers) -> None:
    operator, foreign = servers
    env = _env(operator)
    # the operator's endpoint gets the operator's key
    llm_test_connection(resolve_settings(LLMChoice(), env=env))
    assert operator.auth == [f"Bearer {SERVER_KEY}"]
    # a user-typed URL (Settings -> Base URL -> Apply -> Test connection) does not
    typed = resolve_settings(LLMChoice(provider="openai", base_url=foreign.base_url), env=env)
    assert typed.api_key is None
    llm_test_connection(typed)
    # ... nor via the secrets (secrets.toml) path
    llm_test_connection(resolve_settings(LLMChoice(base_url=foreign.base_url + "/"),
                                         secrets={"OPENAI_API_KEY": SERVER_KEY}, env=env))
    # a key typed with the URL goes to that URL only
    mine = resolve_settings(LLMChoice(provider="openai", base_url=foreign.base_url,
                                      api_key="sk-users-own-key"), env=env)
    llm_test_connection(mine)
    assert "sk-users-own-key" not in repr(mine) and "sk-users-own-key" not in repr(
        LLMChoice(api_key="sk-users-own-key"))
    assert all(SERVER_KEY not in (a or "") for a in foreign.auth), foreign.auth
    assert foreign.auth[-1] == "Bearer sk-users-own-key"
    assert len(foreign.auth) == 3
    # a typed key never goes to the operator's endpoint
    with pytest.raises(ValueError, match="only used with a base URL typed here"):
        resolve_settings(LLMChoice(api_key="sk-users-own-key"), env=env)


def test_dashboard_provider_cache_never_shares_a_typed_key() -> None:
    src = (REPO / "app" / "state.py").read_text()
    assert "key_id" in src and "_provider(s.provider, s.model, s.base_url, key_id)" in src


# ---- 8. credentials in URLs are redacted everywhere --------------------------------------------
URLS = [
    ("http://user:hunter2pw@127.0.0.1:9/v1", "hunter2pw"),
    ("https://h.example/v1?api-key=qk-secret-123", "qk-secret-123"),
    ("https://h.example/v1?x=1&key=k-secret-456", "k-secret-456"),
    ("https://h.example/v1?token=t-secret-789&y=2", "t-secret-789"),
    ("https://h.example/v1?api_key=u-secret-000", "u-secret-000"),
]


@pytest.mark.parametrize(("url", "secret"), URLS)
def test_credentials_in_urls_are_redacted(url: str, secret: str) -> None:
    shown = redact_url(url)
    assert secret not in shown and "***" in shown
    assert secret not in redact_text(f"could not connect to {url} (x)")
    s = resolve_settings(LLMChoice(provider="openai", base_url=url, model="m"),
                         env={"EMERFLOW_LLM_PROVIDER": "openai"})
    assert secret not in json.dumps(settings_summary(s))  # the Settings page table
    assert secret not in json.dumps(s.public_dict())  # augment/<dataset>.json provenance
    assert redact_url("http://127.0.0.1:8000/v1?model=x") == "http://127.0.0.1:8000/v1?model=x"


def test_error_messages_never_show_url_credentials() -> None:
    url = "http://user:hunter2pw@127.0.0.1:9/v1?api-key=qk-secret-123"
    s = resolve_settings(LLMChoice(provider="openai", base_url=url, model="m"),
                         env={"EMERFLOW_LLM_MAX_RETRIES": "0", "EMERFLOW_LLM_TIMEOUT": "2"})
    with pytest.raises(AugmentationError) as err:
        llm_test_connection(s)
    assert "hunter2pw" not in str(err.value) and "qk-secret-123" not in str(err.value)
    assert "could not connect" in str(err.value)


def test_augment_provenance_json_has_no_url_credentials(tmp_path: Path) -> None:
    from engine.augment.batch import augment_dataset  # noqa: F401 - the writer of the JSON
    from engine.augment.providers import LLMSettings

    s = LLMSettings(provider="openai", model="m",
                    base_url="http://user:hunter2pw@127.0.0.1:9/v1?token=t-secret-789",
                    api_key="sk-x-123456")
    doc = json.dumps(s.public_dict())
    assert "hunter2pw" not in doc and "t-secret-789" not in doc and "sk-x" not in doc


# ---- 12. one settings object, one default provider, README in step -----------------------------
def test_readme_settings_table_matches_the_settings_object() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Settings", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = {n for line in rows for n in re.findall(r"`([A-Z][A-Z0-9_]+)`",
                                                          line.split("|")[1])}
    assert documented == set(env_names())


def test_one_default_provider_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.llm import default_provider
    from engine.augment.providers import LLMSettings

    for var in env_names():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", SERVER_KEY)  # a key alone does not pick a provider
    assert get_settings().llm_provider == "none"
    assert default_provider() == "none"
    assert LLMSettings().provider == "none"
    assert LLMSettings.from_env().provider == "none"
    assert resolve_settings().provider == "none"
    assert SERVER_KEY not in repr(get_settings())


def test_no_module_reads_the_environment_for_settings() -> None:
    offenders = []
    for root in ("engine", "app", "db"):
        for path in (REPO / root).rglob("*.py"):
            if path.name == "settings.py" and path.parent.name == "engine":
                continue
            if path.relative_to(REPO).as_posix() == "db/migrations/env.py":
                continue  # the `alembic` command line only; the library gets its URL passed
            text = path.read_text()
            for m in re.finditer(r"os\.environ(?:\.get)?\(?\[?[\"']([A-Z_]+)", text):
                if m.group(1).startswith(("EMERFLOW_", "OPENAI_", "DATABASE_")):
                    offenders.append(f"{path.relative_to(REPO)}: {m.group(1)}")
            if "getenv(" in text:
                offenders.append(f"{path.relative_to(REPO)}: getenv")
    assert offenders == []
    db_src = "\n".join(p.read_text() for p in (REPO / "db").rglob("*.py"))
    assert "import engine" not in db_src and "from engine" not in db_src
    assert "from app" not in db_src


def test_settings_read_once_and_invalid_values_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMERFLOW_LLM_TIMEOUT", "7")
    assert get_settings() is get_settings()
    assert get_settings().llm_timeout == 7.0
    with pytest.raises(ValueError, match="EMERFLOW_LLM_TIMEOUT") as err:
        Settings.from_mapping({"EMERFLOW_LLM_TIMEOUT": "soon", "OPENAI_API_KEY": SERVER_KEY})
    assert SERVER_KEY not in str(err.value)


# ---- 3. every entry point binds 127.0.0.1, from any directory; no tracebacks for users --------
def test_app_options_bind_loopback_and_hide_errors_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.cli import app_options, build_parser

    monkeypatch.chdir(tmp_path)  # no .streamlit/config.toml here
    opts = app_options()
    assert "--server.address=127.0.0.1" in opts and "--server.headless=true" in opts
    assert "--client.showErrorDetails=none" in opts
    assert "--server.address=0.0.0.0" in app_options("0.0.0.0")  # only when asked
    for command in ("demo", "app"):
        args = build_parser().parse_args([command])
        assert "--server.address=127.0.0.1" in app_options(args.address, args.port, env={})


def _listening_addresses(port: int) -> set[str]:
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.rsplit(":", 1)
            if int(hexport, 16) == port and state == "0A":  # LISTEN
                out.add(addr)
    return out


@pytest.mark.slow
def test_emerflow_demo_started_elsewhere_listens_on_loopback_only(
    demo_env: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.llm_server import free_port

    port = free_port()
    env = {k: v for k, v in __import__("os").environ.items()}
    env["EMERFLOW_HOME"] = str(demo_env)  # demo workspaces already built
    proc = subprocess.Popen(
        [sys.executable, "-c", "from engine.cli import main; main()", "demo", "--port",
         str(port)], cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                            timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, "the app exited"
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.5)
        addrs = _listening_addresses(port)
        assert addrs, "no listening socket found"
        loopback = {"0100007F", "00000000000000000000000001000000"}
        assert addrs <= loopback, addrs
    finally:
        import os
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_cli_failures_are_one_line_with_details_in_the_log(
    emerflow_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.cli as cli

    def boom(args: object) -> int:
        raise RuntimeError("kaboom at http://u:pw-secret-1@h/x")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["app"].set_defaults(func=boom)
    assert cli.main(["app"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: RuntimeError: kaboom") and "Traceback" not in err
    assert "pw-secret-1" not in err
    assert "Traceback" in (emerflow_home / "logs" / "emerflow.log").read_text()


# ---- 6. exports and augment CSVs never carry a formula -----------------------------------------
def _cells(data: bytes, sep: str) -> list[list[str]]:
    """What a spreadsheet sees: every line split by the CSV rules."""
    import csv
    import io

    return list(csv.reader(io.StringIO(data.decode()), delimiter=sep))


@pytest.mark.parametrize("fmt", ["CSV", "TSV"])
def test_exports_neutralize_formulas_and_keep_stamp_lines_whole(fmt: str) -> None:
    import io

    import pandas as pd

    from app import exports

    evil = "x,=1+1,@SUM(A1)\t-2+3\r\n=cmd"
    table = pd.DataFrame({"target_id": ["1", "2", "3"], "name": ["=HYPERLINK(1)", "+1", "ok"],
                          "note": ["@x", "\tTAB", "-minus"], "score": [-0.5, 0.25, 1.0]})
    meta = {"workspace": "w", "item": evil, "phase": "0"}
    data, _, _ = exports.export_bytes(table, fmt, meta)
    sep = "," if fmt == "CSV" else "\t"
    rows = _cells(data, sep)
    stamp = [r for r in rows if r and r[0].startswith("#")]
    # the "skip N lines" header line + one per stamp key, each one cell
    assert len(stamp) == 4 and all(len(r) == 1 for r in stamp), stamp
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (cell, row)
            assert not cell.startswith("-") or cell == "-0.5", (cell, row)
    back = pd.read_csv(io.BytesIO(data), comment="#", sep=sep, dtype={"target_id": str})
    assert back["score"].tolist() == [-0.5, 0.25, 1.0]
    assert back["name"].tolist() == ["'=HYPERLINK(1)", "'+1", "ok"]
    from urllib.parse import unquote

    assert unquote(stamp[2][0].split(": ", 1)[1]) == evil


def test_llm_values_written_to_augment_csv_are_neutralized(tmp_path: Path) -> None:
    from engine.augment import JsonlCache, LLMSettings, make_provider
    from engine.augment.batch import augment_dataset
    from engine.bench import load_augmentations
    from engine.data.demo import load_demo

    answer = json.dumps({"director": "=HYPERLINK(\"http://evil/\",\"x\")",
                         "themes": "@SUM(1+1)"})
    body = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": answer}}]}
    with RecordingLLM(body=body) as server:
        provider = make_provider(LLMSettings(provider="openai", base_url=server.base_url,
                                             model="m", max_retries=0, timeout_s=10))
        dataset = load_demo("demo-movies")
        out = tmp_path / "augment" / "demo-movies.csv"
        augment_dataset(provider, dataset, out, JsonlCache(tmp_path / "c.jsonl"),
                        features=["director", "themes"], limit=2, concurrency=1)
    rows = _cells(out.read_bytes(), ",")
    values = [c for r in rows[1:] for c in r]
    assert any(v.startswith("'=HYPERLINK") for v in values), rows
    assert not any(v.startswith(("=", "+", "@", "\t", "\r")) for v in values), rows
    frame, _, _ = load_augmentations(out)  # the benchmark reads the LLM's values back intact
    assert frame is not None and frame["director"].iloc[0].startswith("=HYPERLINK")


# ---- 7. user and LLM text is never rendered as markdown ----------------------------------------
def test_markdown_in_names_and_llm_errors_is_shown_literally() -> None:
    from app.safe_text import md

    shown = md("![t](http://host/x.png) [click](http://evil) <img src=x> `code` **b**")
    assert "![" not in shown.replace("\\!\\[", "") and "](" not in shown.replace("\\]\\(", "")
    assert "<img" not in shown.replace("\\<img", "")
    assert md("target_id 'nope': line 3") == "target_id 'nope': line 3"
    # GFM autolinks bare URLs (issue 18: a CUI error showed a link to the typed host)
    assert "http://" not in md("got 'http://evil.example/x.png'")
    assert "www." not in md("WWW.x.org") and md("www.x.org").replace("\u2060", "") == "www.x.org"


def test_pages_escape_item_names_and_error_bodies() -> None:
    pages = {
        "app/state.py": "item **{md(item.name)}**",
        "app/views/predictions.py": "for {md(item.name)}",
        "app/views/new_item.py": "{md(data.name)}",
        "app/views/features.py": 'md(f"Augmentation failed: {exc}")',
        "app/views/settings.py": "md(redact_text(f\"Connection failed: {exc}\"))",
    }
    for path, needle in pages.items():
        assert needle in (REPO / path).read_text(), path


def test_invalid_base_url_error_does_not_echo_credentials() -> None:
    from engine.augment.providers import LLMSettings

    with pytest.raises(ValueError) as err:
        LLMSettings(provider="openai", base_url="ftp://user:hunter2pw@h/x?token=t-secret-789")
    assert "hunter2pw" not in str(err.value) and "t-secret-789" not in str(err.value)


# ---- 11. identity from a real login (st.login, OIDC) -------------------------------------------
def _auth_secrets(idp, app_port: int, admins: list[str] | None = None) -> dict:
    doc = {"auth": {"redirect_uri": f"http://127.0.0.1:{app_port}/oauth2callback",
                    "cookie_secret": "x" * 32, "client_id": idp.client_id,
                    "client_secret": idp.client_secret,
                    "server_metadata_url": idp.metadata_url}}
    if admins is not None:
        doc["emerflow"] = {"admins": admins}
    return doc


def _toml(doc: dict) -> str:
    lines = []
    for section, values in doc.items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            lines.append(f"{k} = {json.dumps(v)}")
    return "\n".join(lines) + "\n"


def _provider_token(cookie_secret: str, provider: str = "default") -> str:
    import time

    from joserfc import jwt
    from joserfc.jwk import OctKey

    return jwt.encode({"alg": "HS256"}, {"provider": provider, "exp": int(time.time()) + 120},
                      OctKey.import_key(cookie_secret))


@pytest.mark.slow
def test_login_through_a_real_oidc_provider(tmp_path: Path) -> None:
    """The whole authorization-code flow: Streamlit's /auth/login -> the provider on 127.0.0.1
    -> /oauth2callback (code exchanged with the client secret, ID token checked against the
    provider's keys) -> the identity cookie."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import requests

    from tests.llm_server import free_port
    from tests.oidc_provider import OIDCProvider

    port = free_port()
    with OIDCProvider(email="ana@example.org") as idp:
        (tmp_path / ".streamlit").mkdir()
        (tmp_path / ".streamlit" / "secrets.toml").write_text(_toml(_auth_secrets(idp, port)))
        env = {**os.environ, "EMERFLOW_HOME": str(tmp_path / "home"),
               "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [sys.executable, "-c", "from engine.cli import main; main()", "app", "--port",
             str(port)], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    if requests.get(f"{base}/_stcore/health", timeout=2).ok:
                        break
                except requests.RequestException:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.5)
            session = requests.Session()
            # what st.login() sends the browser to: /auth/login with a provider token signed
            # with the cookie secret (made here the way Streamlit makes it)
            login = f"{base}/auth/login?provider={_provider_token('x' * 32)}"
            resp = session.get(login, timeout=30, allow_redirects=True)
            assert idp.token_requests == [{"client_ok": True, "code_ok": True}]
            assert resp.url.rstrip("/") == base, resp.url
            assert any(c.name.startswith("_streamlit_user") for c in session.cookies)
            # a wrong client secret is refused by the provider: no identity cookie
            idp.client_secret = "wrong"
            other = requests.Session()
            other.get(f"{base}/auth/login?provider={_provider_token('x' * 32)}", timeout=30,
                      allow_redirects=True)
            assert idp.token_requests[-1]["client_ok"] is False
            assert not any(c.name.startswith("_streamlit_user") for c in other.cookies)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def _app(secrets: dict, user: dict, **state):
    st_testing = pytest.importorskip("streamlit.testing.v1")
    import app as app_pkg

    at = st_testing.AppTest.from_file(str(Path(app_pkg.__file__).parent / "main.py"),
                                      default_timeout=90)
    for k, v in secrets.items():
        at.secrets[k] = v
    at.user = user
    for k, v in state.items():
        at.session_state[k] = v
    return at


def test_login_required_identity_recorded_and_settings_for_admins(demo_env) -> None:
    from app.state import ITEM_KEY, WORKSPACE_KEY
    from db import repository as repo
    from db.database import make_engine
    from tests.oidc_provider import OIDCProvider

    with OIDCProvider() as idp:
        secrets = _auth_secrets(idp, 8501, admins=["boss@example.org"])
    # logged out: a login page, nothing else
    at = _app(secrets, {"is_logged_in": False})
    at.run()
    assert not at.exception and [b.label for b in at.button] == ["Log in"]
    assert "Log in" in "\n".join(str(e.value) for e in at.info)
    # logged in: the identity is recorded with the decisions (no free-text name)
    user = {"is_logged_in": True, "sub": "u-7", "email": "ana@example.org", "name": "Ana"}
    at = _app(secrets, user, **{WORKSPACE_KEY: "demo-diseases"})
    at.run()
    at.switch_page("views/new_item.py").run()
    assert not at.text_input(key="nd_name").disabled
    at.text_input(key="nd_name").input("Login disease")
    at.text_area(key="nd_desc").input("A disorder of Wnt signaling affecting bone density.")
    at.form_submit_button[0].click().run()
    item_id = at.session_state[ITEM_KEY]
    assert not any(t.label == "Analyst" for t in at.text_input)
    at.switch_page("views/feedback.py").run()
    at.file_uploader(key="fb_upload").set_value(
        [("ok.csv", b"target_id,label,note\n100001,1,lab result\n100002,0,\n", "text/csv")]
    ).run()
    at.button(key="refine_upload").click().run()
    assert not at.exception, [e.value for e in at.exception]
    from engine.settings import get_settings

    db = make_engine(get_settings().database_url_resolved())
    assert {i.analyst for i in repo.interactions(db, item_id)} == {"ana@example.org"}
    assert repo.get_item(db, item_id).created_by == "ana@example.org"
    # settings: read-only for a non-admin, editable for an admin
    at.switch_page("views/settings.py").run()
    assert at.form_submit_button[0].disabled
    # a listed e-mail the provider did not verify is not an admin (issue 18)
    at = _app(secrets, {**user, "email": "boss@example.org", "email_verified": False})
    at.run()
    at.switch_page("views/settings.py").run()
    assert at.form_submit_button[0].disabled
    at = _app(secrets, {**user, "email": "boss@example.org", "email_verified": True})
    at.run()
    at.switch_page("views/settings.py").run()
    assert not at.form_submit_button[0].disabled
    db.dispose()


def test_local_mode_analyst_name_has_no_markup() -> None:
    from app.auth import clean_analyst_name

    assert clean_analyst_name("<b>anyone</b>") == "b anyone b"
    assert clean_analyst_name("  ") == "analyst"
    assert clean_analyst_name("Ana O'Neil-Smith ana@x.org") == "Ana O'Neil-Smith ana@x.org"


def test_database_urls_are_shown_without_credentials() -> None:
    from db.database import redacted

    shown = redacted("postgresql+psycopg://u:hunter2pw@h/db?sslpassword=s-secret-1&sslmode=require")
    assert "hunter2pw" not in shown and "s-secret-1" not in shown and "sslmode=require" in shown


def test_routing_only_through_st_navigation_and_login_first() -> None:
    """Issue 18: a ``pages/`` folder beside ``app/main.py`` keeps Streamlit's folder routing
    alive, and those URLs skip the login check. No such folder; the login gate runs before
    ``st.navigation`` and before any page module is imported."""
    import app as app_pkg

    root = Path(app_pkg.__file__).parent
    assert not (root / "pages").exists()
    main = (root / "main.py").read_text(encoding="utf-8")
    assert main.index("login_gate()") < main.index("st.navigation(")
    assert "app.views" not in main and "from app.views" not in main


@pytest.mark.parametrize(("user", "admin"), [
    ({"sub": "u-1", "email": "boss@example.org", "email_verified": True}, True),
    ({"sub": "u-1", "email": "BOSS@example.org", "email_verified": "true"}, True),
    ({"sub": "u-1", "email": "boss@example.org", "email_verified": False}, False),
    ({"sub": "u-1", "email": "boss@example.org"}, False),
    ({"sub": "u-1", "email": "boss@example.org", "email_verified": "false"}, False),
    ({"sub": "sub-boss-42", "email": "x@example.org"}, True),
    ({"sub": "SUB-BOSS-42", "email": "x@example.org"}, False),
    ({"email": "boss@example.org"}, False),  # no sub: the unverified e-mail stands in for it
])
def test_admins_only_verified_emails_or_subject_ids(user: dict, admin: bool) -> None:
    """Issue 18: an identity whose ``email_verified`` is not true is not an admin by e-mail."""
    from app.auth import identity_from_user, may_change_settings

    secrets = {"auth": {"redirect_uri": "http://127.0.0.1:1/oauth2callback",
                        "cookie_secret": "x" * 32, "client_id": "c", "client_secret": "s",
                        "server_metadata_url": "http://127.0.0.1:2/.well-known"},
               "emerflow": {"admins": ["boss@example.org", "sub-boss-42"]}}
    ident = identity_from_user({"is_logged_in": True, **user})
    assert may_change_settings(ident, secrets) is admin


_MARKDOWN_CALLS = {"error", "warning", "info", "success", "markdown", "caption", "subheader",
                   "title", "header", "toast", "write", "button", "expander", "status"}
_ESCAPERS = {"md", "user_message"}


def _unescaped_exceptions(tree) -> list[int]:
    """Lines where an exception's text reaches a Markdown-rendering call outside ``md()``."""
    import ast

    bad: list[int] = []

    def walk(node, escaped: bool) -> None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in _ESCAPERS:
            escaped = True
        if isinstance(node, ast.Name) and node.id == "exc" and not escaped:
            bad.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            walk(child, escaped)

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in _MARKDOWN_CALLS:
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                walk(arg, False)
        if isinstance(node, ast.Assign) and any(  # messages kept for the rerun
                isinstance(t, ast.Subscript) and "session_state" in ast.unparse(t)
                for t in node.targets) and _is_text(node.value):
            walk(node.value, False)
    return bad


def _is_text(node) -> bool:
    """An expression that makes a message: ``str(...)``, an f-string or a concatenation."""
    import ast

    return isinstance(node, (ast.JoinedStr, ast.BinOp)) or (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str")


def test_every_error_message_on_a_page_is_escaped() -> None:
    """Issue 18: an error message can carry a CUI, phenotype, file cell or LLM answer, so each
    one shown through Markdown goes through ``md()`` (no external image fetched)."""
    import ast

    files = [*sorted((REPO / "app" / "views").glob("*.py")), REPO / "app" / "state.py",
             REPO / "app" / "main.py"]
    found = {str(p.relative_to(REPO)): _unescaped_exceptions(ast.parse(p.read_text()))
             for p in files}
    assert not {k: v for k, v in found.items() if v}, found
    # the check itself sees the pattern it is there for
    assert _unescaped_exceptions(ast.parse("st.error(str(exc))")) == [1]
    assert _unescaped_exceptions(ast.parse("st.error(md(str(exc)))")) == []
    assert _unescaped_exceptions(ast.parse("st.session_state['m'] = str(exc)")) == [1]


# ---- issue 18: one key-containment rule for every entry point; cache keyed by endpoint ----------
def test_one_key_rule_for_every_entry_point(servers, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's rule (``key_for_endpoint``) decides for the environment, the CLI's
    ``--base-url`` and the Settings page alike: the operator's key reaches only its endpoint."""
    from engine.augment.providers import LLMSettings, key_for_endpoint

    operator, foreign = servers
    op = dict(operator_url=operator.base_url, operator_key=SERVER_KEY)
    assert key_for_endpoint(None, None, **op) == SERVER_KEY
    assert key_for_endpoint(operator.base_url + "/", None, **op) == SERVER_KEY
    assert key_for_endpoint(foreign.base_url, None, **op) is None
    assert key_for_endpoint(foreign.base_url, "sk-own", **op) == "sk-own"
    # no OPENAI_BASE_URL: the key is the OpenAI API's, and no typed URL gets it
    assert key_for_endpoint("http://127.0.0.1:9/v1", None, operator_url=None,
                            operator_key=SERVER_KEY) is None
    for name, value in _env(operator).items():
        monkeypatch.setenv(name, value)
    assert LLMSettings.from_env().api_key == SERVER_KEY  # the environment: operator's endpoint
    assert LLMSettings.from_env(base_url=foreign.base_url).api_key is None
    assert LLMSettings.from_env(base_url=foreign.base_url, api_key="sk-own").api_key == "sk-own"


@pytest.mark.slow
def test_cli_base_url_never_receives_the_server_key(servers, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """``emerflow augment --base-url URL`` used to send OPENAI_API_KEY to URL (issue 18)."""
    from engine.cli import main

    operator, foreign = servers
    for name, value in {**_env(operator), "EMERFLOW_HOME": str(tmp_path / "home")}.items():
        monkeypatch.setenv(name, value)
    args = ["augment", "--dataset", "demo-movies", "--features", "mood", "--limit", "1",
            "--concurrency", "1", "--cache", str(tmp_path / "c.jsonl")]
    main([*args, "--base-url", foreign.base_url, "--out", str(tmp_path / "a.csv")])
    assert foreign.auth, "the typed URL was asked"
    assert all(SERVER_KEY not in (a or "") for a in foreign.auth), foreign.auth
    assert "not sent to --base-url" in capsys.readouterr().err
    main([*args, "--out", str(tmp_path / "b.csv")])  # the operator's endpoint: its key
    assert operator.auth and all(a == f"Bearer {SERVER_KEY}" for a in operator.auth)


def test_llm_cache_is_keyed_by_endpoint(servers) -> None:
    """An answer from a typed URL is never served later as the operator endpoint's."""
    from engine.augment.cache import MemoryCache
    from engine.augment.providers import LLMSettings, OpenAIProvider
    from engine.augment.service import fill_values

    operator, foreign = servers
    answer = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
              "choices": [{"index": 0, "finish_reason": "stop",
                           "message": {"role": "assistant", "content": '{"mood": "dark"}'}}]}
    operator.body = foreign.body = answer
    cache = MemoryCache()

    def ask(server: RecordingLLM) -> None:
        settings = LLMSettings(provider="openai", model="m", base_url=server.base_url,
                               max_retries=0, timeout_s=5)
        fill_values(OpenAIProvider(settings), "movie", {"name": "Heat"},
                    [("mood", "Mood")], cache)

    ask(foreign)
    ask(operator)  # same model, same prompt: still asked, not served the foreign answer
    assert len(foreign.auth) == 1 and len(operator.auth) == 1
    ask(operator)  # its own answer is cached
    assert len(operator.auth) == 1


# ---- issue 18: binding and port from every documented start; invalid settings in one line -----
def test_streamlit_port_and_address_variables_honoured_or_rejected(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import app_options, main

    assert "--server.port=9123" in app_options(env={"STREAMLIT_SERVER_PORT": "9123"})
    assert "--server.port=8600" in app_options(port=8600, env={"STREAMLIT_SERVER_PORT": "9123"})
    assert "--server.port=8501" in app_options(env={})
    assert "--server.address=127.0.0.1" in app_options(env={"STREAMLIT_SERVER_PORT": "9123"})
    assert "--server.address=0.0.0.0" in app_options(env={"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"})
    for bad in ("abc", "0", "70000", "85 01"):
        with pytest.raises(ValueError, match="STREAMLIT_SERVER_PORT must be a port number"):
            app_options(env={"STREAMLIT_SERVER_PORT": bad})
    monkeypatch.setenv("STREAMLIT_SERVER_PORT", "http")
    assert main(["app"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "STREAMLIT_SERVER_PORT" in err, err
    assert main(["demo", "--port", "-1"]) == 2  # stops before building anything
    assert "--port must be a port number" in capsys.readouterr().err


def test_invalid_emerflow_setting_is_one_line_without_traceback(tmp_path: Path) -> None:
    """It printed a 26-line traceback: building the parser read the settings first."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "EMERFLOW_LLM_TIMEOUT": "soon", "PYTHONPATH": str(REPO)}
    for argv in (["data", "check"], ["app"], ["--help"]):
        out = subprocess.run([sys.executable, "-c", "import sys; from engine.cli import main; "
                              "sys.exit(main())", *argv], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, (argv, out.stderr)
        assert out.stderr.strip().splitlines() == [out.stderr.strip()], out.stderr
        assert "EMERFLOW_LLM_TIMEOUT" in out.stderr and "Traceback" not in out.stderr


def test_invalid_emerflow_setting_in_the_app_is_one_message(
    monkeypatch: pytest.MonkeyPatch, emerflow_home: Path
) -> None:
    st_testing = pytest.importorskip("streamlit.testing.v1")
    monkeypatch.setenv("EMERFLOW_LLM_TIMEOUT", "soon")
    at = st_testing.AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=60).run()
    assert not at.exception
    assert [e.value for e in at.error] and "EMERFLOW_LLM_TIMEOUT" in at.error[0].value
    assert not at.title  # no page rendered


@pytest.mark.slow
def test_plain_streamlit_run_from_elsewhere_binds_loopback_and_honours_the_port(
    tmp_path: Path,
) -> None:
    """``streamlit run app/main.py`` (the module docstring's way) listened on every interface
    from any other directory, and ``emerflow app`` ignored STREAMLIT_SERVER_PORT."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from tests.llm_server import free_port

    port = free_port()
    env = {**os.environ, "EMERFLOW_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO),
           "STREAMLIT_SERVER_PORT": str(port)}
    env.pop("STREAMLIT_SERVER_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run",
                             str(REPO / "app" / "main.py")], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                            timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, "the app exited"
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.5)
        addrs = _listening_addresses(port)
        assert addrs and addrs <= {"0100007F", "00000000000000000000000001000000"}, addrs
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_exports_are_made_per_click_with_an_unguessable_media_name() -> None:
    """Issue 18: an export's ``/media/<hash>.csv`` URL downloads without a session, and the
    hash was of predictable bytes. Now the bytes are made at the click, with a fresh 128-bit
    ``export_id``, so the URL is new per click and known only to the session that clicked."""
    import pandas as pd
    from streamlit.runtime.memory_media_file_storage import _calculate_file_id

    from app import exports

    table = pd.DataFrame({"target_id": ["100001"], "symbol": ["GENE1"], "score": [0.5]})
    meta = {"workspace": "demo-diseases", "phase": "0", "feature_version": 1, "item": "X"}
    for fmt, (_, mime) in exports.FORMATS.items():
        make = exports.on_click_export(table, fmt, meta)
        first, second = make(), make()
        ids = re.findall(rb"export_id\W+([0-9a-f]{32})", first + b" " + second)
        assert len(set(ids)) == 2, (fmt, first[:300])
        name, _ = exports.export_name(fmt, meta)
        assert _calculate_file_id(first, mime, name) != _calculate_file_id(second, mime, name)
    src = (REPO / "app" / "views" / "predictions.py").read_text()
    assert "exports.on_click_export(" in src and "export_bytes(" not in src
