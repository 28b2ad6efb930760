"""OpenAIProvider against a tiny stub HTTP server: failures a real server won't show on demand.

Each failure must end in a clear AugmentationError or a successful retry, never a crash, and
the API key must never appear in an error message.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from engine.augment import (
    AugmentationError,
    LLMSettings,
    MemoryCache,
    OpenAIProvider,
    fill_values,
    suggest_features,
)
from engine.schema import MOVIE, NAME
from tests.llm_server import free_port

SECRET = "sk-test-SECRET-0123456789abcdef"


def completion(content: str) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "stub",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@dataclass
class Reply:
    """One scripted HTTP answer."""

    status: int = 200
    body: bytes | dict = field(default_factory=lambda: completion('{"director": "X"}'))
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    content_type: str = "application/json"


class Stub:
    """Scripted replies in order; the last one repeats. Records request bodies and headers."""

    def __init__(self) -> None:
        self.script: list[Reply] = [Reply()]
        self.requests: list[dict] = []
        self.auth_headers: list[str] = []
        self.lock = threading.Lock()
        self.port = free_port()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with stub.lock:
                    stub.requests.append(body)
                    stub.auth_headers.append(self.headers.get("Authorization", ""))
                    reply = stub.script.pop(0) if len(stub.script) > 1 else stub.script[0]
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body)
                data = data.encode() if isinstance(data, str) else data
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.close()


def provider(base_url: str, **kw: object) -> OpenAIProvider:
    opts: dict = {"timeout_s": 5.0, "max_retries": 1, "model": "stub-model"}
    opts.update(kw)
    return OpenAIProvider(
        LLMSettings(provider="openai", base_url=base_url, api_key=SECRET, **opts)  # type: ignore[arg-type]
    )


def assert_clean(err: BaseException) -> None:
    """Readable, and no secret in the message, its repr, or a chained exception."""
    text = str(err)
    assert SECRET not in text and SECRET not in repr(err)
    assert "Traceback" not in text
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)


def test_success_sends_json_mode_and_key_only_in_header(stub: Stub) -> None:
    p = provider(stub.base_url)
    assert p.complete_json("sys", "user") == '{"director": "X"}'
    req = stub.requests[0]
    assert req["response_format"] == {"type": "json_object"}
    assert req["model"] == "stub-model" and req["temperature"] == 0.0
    assert req["messages"][0] == {"role": "system", "content": "sys"}
    assert stub.auth_headers[0] == f"Bearer {SECRET}"


def test_timeout_is_a_clear_error(stub: Stub) -> None:
    stub.script = [Reply(delay_s=3.0)]
    p = provider(stub.base_url, timeout_s=0.5, max_retries=1)
    start = time.perf_counter()
    with pytest.raises(AugmentationError, match="timed out") as info:
        p.complete_json("s", "u")
    assert time.perf_counter() - start < 10
    assert_clean(info.value)
    assert len(stub.requests) == 2  # first try + 1 retry


def test_http_500_then_success_is_retried(stub: Stub) -> None:
    stub.script = [Reply(status=500, body={"error": {"message": "boom"}}), Reply()]
    assert provider(stub.base_url).complete_json("s", "u") == '{"director": "X"}'
    assert len(stub.requests) == 2


def test_http_500_persistent_is_a_clear_error(stub: Stub) -> None:
    stub.script = [Reply(status=500, body={"error": {"message": f"boom {SECRET}"}})]
    with pytest.raises(AugmentationError, match="HTTP 500") as info:
        provider(stub.base_url, max_retries=2).complete_json("s", "u")
    assert "boom" in str(info.value) and "after 2 retries" in str(info.value)
    assert_clean(info.value)
    assert len(stub.requests) == 3


def test_rate_limit_429_honours_retry_after_then_succeeds(stub: Stub) -> None:
    stub.script = [
        Reply(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "0.2"}),
        Reply(),
    ]
    assert provider(stub.base_url).complete_json("s", "u") == '{"director": "X"}'
    assert len(stub.requests) == 2


def test_rate_limit_429_persistent_is_a_clear_error(stub: Stub) -> None:
    stub.script = [
        Reply(status=429, body={"error": {"message": "quota"}}, headers={"Retry-After": "0.1"})
    ]
    with pytest.raises(AugmentationError, match="rate limiting") as info:
        provider(stub.base_url).complete_json("s", "u")
    assert_clean(info.value)


def test_non_json_http_body_is_a_clear_error(stub: Stub) -> None:
    stub.script = [Reply(body=b"<html>gateway says hi</html>", content_type="text/html")]
    with pytest.raises(AugmentationError, match="non-JSON|unexpected|malformed") as info:
        provider(stub.base_url).complete_json("s", "u")
    assert_clean(info.value)


def test_invalid_json_body_with_json_content_type_is_a_clear_error(stub: Stub) -> None:
    stub.script = [Reply(body=b'{"choices": [truncated')]
    with pytest.raises(AugmentationError) as info:
        provider(stub.base_url).complete_json("s", "u")
    assert_clean(info.value)


def test_empty_choices_is_a_clear_error(stub: Stub) -> None:
    stub.script = [Reply(body={**completion("x"), "choices": []})]
    with pytest.raises(AugmentationError, match="no choices"):
        provider(stub.base_url).complete_json("s", "u")


def test_connection_refused_is_a_clear_error() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(AugmentationError, match="could not connect") as info:
        provider(f"http://127.0.0.1:{port}/v1", max_retries=0).complete_json("s", "u")
    assert_clean(info.value)


def test_auth_error_never_echoes_the_key(stub: Stub) -> None:
    stub.script = [Reply(status=401, body={"error": {"message": f"Incorrect API key {SECRET}"}})]
    with pytest.raises(AugmentationError, match="401") as info:
        provider(stub.base_url).complete_json("s", "u")
    assert_clean(info.value)


def test_json_mode_rejected_falls_back_once_without(stub: Stub) -> None:
    stub.script = [
        Reply(status=400, body={"error": {"message": "response_format is not supported"}}),
        Reply(),
    ]
    p = provider(stub.base_url)
    assert p.complete_json("s", "u") == '{"director": "X"}'
    assert "response_format" in stub.requests[0] and "response_format" not in stub.requests[1]
    assert p.json_mode_active is False
    p.complete_json("s", "u")  # later calls don't ask again
    assert "response_format" not in stub.requests[2]


def test_json_mode_rejected_and_fallback_fails_is_a_clear_error(stub: Stub) -> None:
    stub.script = [Reply(status=400, body={"error": {"message": "bad request"}})]
    with pytest.raises(AugmentationError, match="HTTP 400") as info:
        provider(stub.base_url).complete_json("s", "u")
    assert len(stub.requests) == 2
    assert_clean(info.value)


def test_service_repairs_non_json_answer_over_http(stub: Stub) -> None:
    stub.script = [
        Reply(body=completion("I think it is James Cameron.")),
        Reply(body=completion('```json\n{"director": "James Cameron"}\n```')),
    ]
    cache = MemoryCache()
    res = fill_values(
        provider(stub.base_url), MOVIE, {NAME: "Titanic (1997)"}, ["director", "themes"], cache
    )
    assert res.values == {"director": "James Cameron", "themes": ""}
    assert "no JSON object found" in stub.requests[1]["messages"][1]["content"]
    assert len(cache) == 1


def test_service_gives_clear_error_when_model_never_answers_json(stub: Stub) -> None:
    stub.script = [Reply(body=completion("no idea"))]
    cache = MemoryCache()
    with pytest.raises(AugmentationError, match="invalid twice") as info:
        suggest_features(provider(stub.base_url), MOVIE, ["genres"], cache)
    assert len(stub.requests) == 2 and len(cache) == 0
    assert_clean(info.value)
