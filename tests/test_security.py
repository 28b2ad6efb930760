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
        assert args.address == "127.0.0.1"


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
