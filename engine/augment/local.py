"""The in-process local provider: a ``transformers`` causal LM with batched greedy generation.

Loaded lazily (importing this module does not import torch or transformers). Re-exported by
:mod:`engine.augment.providers`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.augment.providers import AugmentationError, LLMProvider, Prompt, _clip

if TYPE_CHECKING:
    from engine.augment.providers import LLMSettings


class LocalProvider(LLMProvider):
    """In-process ``transformers`` causal LM (offline), with batched greedy generation.

    The model is loaded lazily from a Hugging Face directory (e.g. the one made by
    :func:`engine.augment.local_model.prepare_local_model`). Prompts are rendered with the
    tokenizer's chat template, left-padded and generated together in chunks of
    ``batch_size``. With ``json_prefix`` the answer is primed with ``{`` (prepended back to
    the returned text), which makes small models far more likely to answer in JSON.
    """

    name = "local"

    def __init__(
        self,
        settings: LLMSettings | None = None,
        *,
        model_dir: Path | str | None = None,
        batch_size: int | None = None,
        max_new_tokens: int | None = None,
        dtype: str = "float32",
        json_prefix: bool = True,
    ) -> None:
        if model_dir is None:
            if settings is not None and settings.model:
                model_dir = settings.model
            else:
                from engine.augment.local_model import default_model_dir

                model_dir = default_model_dir()
        if batch_size is None:
            batch_size = settings.batch_size if settings is not None else 4
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be float32, bfloat16 or float16, got {dtype!r}")
        self.model_dir = Path(model_dir).expanduser()
        self.model = str(self.model_dir)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens or (settings.max_tokens if settings else 384)
        self.temperature = settings.temperature if settings else 0.0
        self.dtype = dtype
        self.json_prefix = json_prefix
        self._lock = threading.Lock()
        self._tok: Any = None
        self._lm: Any = None

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._lm is None:
                if not (self.model_dir / "config.json").is_file():
                    raise AugmentationError(
                        f"local model not found at {self.model_dir}: run `emerflow llm prepare`"
                    )
                try:
                    import torch
                    from transformers import AutoModelForCausalLM, AutoTokenizer

                    tok = AutoTokenizer.from_pretrained(str(self.model_dir))
                    tok.padding_side = "left"
                    if tok.pad_token is None:
                        tok.pad_token = tok.eos_token
                    lm = AutoModelForCausalLM.from_pretrained(
                        str(self.model_dir), dtype=getattr(torch, self.dtype)
                    )
                    lm.eval()
                except AugmentationError:
                    raise
                except Exception as exc:  # noqa: BLE001 - turned into a readable error
                    raise AugmentationError(
                        f"could not load the local model from {self.model_dir}: "
                        f"{type(exc).__name__}: {_clip(str(exc))}"
                    ) from None
                self._tok, self._lm = tok, lm
            return self._tok, self._lm

    def complete_json(self, system: str, user: str) -> str:
        result = self.complete_json_many([(system, user)])[0]
        if isinstance(result, AugmentationError):
            raise result
        return result

    def complete_json_many(self, prompts: Sequence[Prompt]) -> list[str | AugmentationError]:
        if not prompts:
            return []
        tok, lm = self._load()
        out: list[str | AugmentationError] = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            try:
                out.extend(self._generate(tok, lm, chunk))
            except Exception as exc:  # noqa: BLE001 - one failed chunk must not end the batch
                err = AugmentationError(
                    f"local generation failed: {type(exc).__name__}: {_clip(str(exc))}"
                )
                out.extend([err] * len(chunk))
        return out

    def _generate(self, tok: Any, lm: Any, chunk: Sequence[Prompt]) -> list[str]:
        import torch

        prefix = "{" if self.json_prefix else ""
        texts = [
            tok.apply_chat_template(
                [{"role": "system", "content": s}, {"role": "user", "content": u}],
                tokenize=False,
                add_generation_prompt=True,
            )
            + prefix
            for s, u in chunk
        ]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "pad_token_id": tok.pad_token_id,
        }
        if self.json_prefix:
            from transformers import StoppingCriteriaList

            gen_kwargs["stopping_criteria"] = StoppingCriteriaList(
                [_JSONClosedStop(tok, enc["input_ids"].shape[1], prefix)]
            )
        if self.temperature > 0:
            gen_kwargs.update(do_sample=True, temperature=self.temperature)
        else:
            gen_kwargs.update(do_sample=False)
        with self._lock, torch.inference_mode():
            ids = lm.generate(**enc, **gen_kwargs)
        new = ids[:, enc["input_ids"].shape[1] :]
        return [prefix + t for t in tok.batch_decode(new, skip_special_tokens=True)]


def json_object_closed(text: str) -> bool:
    """True once ``text`` (starting with ``{``) holds a complete top-level JSON object."""
    depth = 0
    in_str = escaped = False
    started = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            depth += 1
            started = True
        elif ch in "}]":
            depth -= 1
            if started and depth <= 0:
                return True
    return False


class _JSONClosedStop:
    """Stopping criterion: a row is done once its answer closes the top-level JSON object."""

    def __init__(self, tok: Any, prompt_len: int, prefix: str) -> None:
        self.tok, self.prompt_len, self.prefix = tok, prompt_len, prefix

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        texts = self.tok.batch_decode(input_ids[:, self.prompt_len :], skip_special_tokens=True)
        done = [json_object_closed(self.prefix + t) for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
