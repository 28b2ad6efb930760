"""EmerFlow in a shared item/target space: aligner, the one phase update, meta-training, ranking.

The backbone is :class:`engine.models.twotower.TwoTower` (frozen): an item embedding ``e``
ranks the whole catalog by ``log p(t | e) = log_softmax(e T^T + b)``. On top of it:

- :class:`RetrievalAligner` (Eq. 4): text vector -> embedding. An MLP plus attention over the
  established items (keys: their text vectors, values: the backbone's own ID embeddings of
  them), so generated embeddings keep the backbone's neighbourhoods (the idea of ALDI,
  SIGIR'23: distil the warm embeddings into the cold generator).
- :func:`posterior_update`: THE phase update, used by meta-training (differentiably), the
  benchmark and the dashboard alike: ``steps`` gradient-ascent steps on the mean
  log-likelihood of the confirmed targets (minus ``negative_weight`` times that of rejected
  ones) with a Gaussian prior ``prior_weight / 2 * ||e - e_text||^2`` centred on the
  text-generated embedding (prior + evidence).
- :class:`EaseIndex`: propagation from the confirmed targets over target-target structure of
  old items (EASE, Steck WWW'19, through the Woodbury identity: no ``[N, N]`` matrix).
- :func:`meta_train` (Eq. 5-7): ``alpha * L_cold + (1 - alpha) * L_warm + distill * L_distill``
  where ``L_cold`` is the full-catalog multinomial loss of the generated embedding on the old
  item's positives, ``L_warm`` the same loss on the rest of its positives after
  :func:`posterior_update` on a first batch of ``shot`` of them, and ``L_distill`` the squared
  distance to the backbone's own ID embedding.
- :func:`rank_scores`: ``log p(t | e) + beta * ease(confirmed)``, what every caller ranks by.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import sparse
from torch import nn

from engine.config import PosteriorConfig, SharedConfig, SharedMetaConfig
from engine.models.twotower import TwoTower, multinomial_nll
from engine.ranking.base import Decisions, Reason, Scored

ProgressFn = Callable[[int, int, float], None]


def _unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)


class RetrievalAligner(nn.Module):
    """Eq. 4 in the shared space: ``e = MLP(t) + sum_o softmax(cos(t, t_o) / tau)_o E_o``.

    Args:
        keys: established items' text vectors ``[K, T]`` (stored unit-normalized).
        values: the backbone's ID embeddings of the same items ``[K, D]``.
        hidden, dropout: MLP width and dropout.
        temperature: attention temperature.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, hidden: int = 256,
                 dropout: float = 0.1, temperature: float = 0.05):
        super().__init__()
        if keys.shape[0] != values.shape[0]:
            raise ValueError("RetrievalAligner: keys and values differ in rows")
        if not temperature > 0:
            raise ValueError("RetrievalAligner: temperature must be > 0")
        self.text_dim = int(keys.shape[1])
        self.embed_dim = int(values.shape[1])
        self.hidden = int(hidden)
        self.temperature = float(temperature)
        self.register_buffer("keys", _unit(keys.float()).contiguous())
        self.register_buffer("values", values.float().contiguous())
        self.net = nn.Sequential(nn.Linear(self.text_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, self.embed_dim))
        nn.init.normal_(self.net[-1].weight, std=0.01)
        nn.init.zeros_(self.net[-1].bias)

    def attention(self, text: torch.Tensor, exclude: torch.Tensor | None = None) -> torch.Tensor:
        """Weights over established items ``[M, K]``; ``exclude [M]`` masks each row's own item
        (leave-one-out while meta-training on old items)."""
        sim = _unit(text) @ self.keys.T / self.temperature  # [M, K]
        if exclude is not None:
            sim = sim.clone()
            sim[torch.arange(len(text)), exclude] = float("-inf")
        return torch.softmax(sim, dim=1)

    def forward(self, text: torch.Tensor, exclude: torch.Tensor | None = None) -> torch.Tensor:
        """``text [M, T]`` -> embeddings ``[M, D]``."""
        return self.net(text) + self.attention(text, exclude) @ self.values


def posterior_update(model: TwoTower, prior: torch.Tensor, confirmed: torch.Tensor,
                     rejected: torch.Tensor | None, config: PosteriorConfig) -> torch.Tensor:
    """The phase update: embeddings ``[M, D]`` from confirmed (and rejected) targets.

    Maximizes ``mean_{s in confirmed} log p(s | e) - negative_weight * mean_{r in rejected}
    log p(r | e) - prior_weight / 2 * ||e - prior||^2`` by ``steps`` gradient-ascent steps,
    written out in closed form (``d log p(s|e) / de = T_s - E_p[T]``) so it is differentiable
    for meta-training and needs no autograd at serving time.

    Shapes: ``prior [M, D]``, ``confirmed [M, N]`` and ``rejected [M, N]`` 0/1 (or weights).
    Items without any decision keep their prior.
    """
    if config.steps == 0:
        return prior
    t = model.target.weight  # [N, D]
    n_pos = confirmed.sum(1, keepdim=True)
    pos_mean = (confirmed @ t) / n_pos.clamp(min=1.0)  # [M, D]
    has_pos = (n_pos > 0).to(prior.dtype)
    if rejected is not None and config.negative_weight > 0:
        n_neg = rejected.sum(1, keepdim=True)
        neg_mean = (rejected @ t) / n_neg.clamp(min=1.0)
        has_neg = (n_neg > 0).to(prior.dtype)
    else:
        neg_mean, has_neg = torch.zeros_like(prior), torch.zeros_like(has_pos)
    e = prior
    for _ in range(config.steps):
        expect = torch.softmax(model.logits(e), dim=1) @ t  # [M, D]  E_p[T]
        grad = (has_pos * (pos_mean - expect)
                - config.negative_weight * has_neg * (neg_mean - expect)
                - config.prior_weight * (e - prior))
        e = e + config.lr * grad
    return e


class EaseIndex:
    """EASE over the old items' positives ``x [K, N]``, scored without an ``[N, N]`` matrix.

    ``B = I - P diag(1 / diag P)``, ``P = (x^T x + lam I)^-1 = (I - x^T (x x^T + lam I)^-1 x) /
    lam`` (Woodbury), so ``seen @ B`` costs sparse products with ``x`` and a ``[K, K]`` matrix:
    memory is O(nnz(x) + K^2 + N), which keeps a million-target catalog cheap.
    """

    def __init__(self, x: np.ndarray | sparse.spmatrix, lam: float, chunk: int = 65_536):
        if not lam > 0:
            raise ValueError(f"EaseIndex: lam must be > 0, got {lam}")
        self.lam = float(lam)
        self.x = sparse.csr_matrix(x, dtype=np.float32)  # [K, N]
        k, n = self.x.shape
        gram = (self.x @ self.x.T).toarray().astype(np.float64) + self.lam * np.eye(k)
        self.kinv = np.linalg.inv(gram)  # [K, K]
        xt = sparse.csr_matrix(self.x.T, dtype=np.float64)  # [N, K]
        diag = np.empty(n, np.float64)
        for s in range(0, n, chunk):  # diag P = (1 - x_j^T K^-1 x_j) / lam, chunk-wise
            part = xt[s : s + chunk]
            diag[s : s + chunk] = (1.0 - np.asarray(
                part.multiply(part @ self.kinv).sum(1)).ravel()) / self.lam
        self.diag_p = diag  # [N] float64, > 0

    def vote(self, weights: np.ndarray) -> np.ndarray:
        """``weights [M, K]`` over old items -> ``weights @ x`` ``[M, N]``."""
        return np.asarray((self.x.T @ np.asarray(weights).T).T)

    def scores(self, seen: np.ndarray) -> np.ndarray:
        """``seen [M, N]`` 0/1 -> ``seen @ B`` ``[M, N]`` float64 (0 for rows without a seen
        target)."""
        s = np.asarray(seen, np.float64)
        sx = np.asarray((self.x @ s.T).T)  # [M, K] = seen @ x^T
        seen_p = (s - self.vote(sx @ self.kinv)) / self.lam  # [M, N] = seen @ P
        return s - seen_p / self.diag_p[None, :]


#: Floor of the neighbour vote inside its log (a target no neighbour has).
VOTE_FLOOR = 1e-3


def neighbour_vote(aligner: RetrievalAligner, text: torch.Tensor,
                   ease: EaseIndex) -> np.ndarray:
    """``[M, N]``: the aligner's attention over established items ``[M, K]`` times their
    positives ``[K, N]`` (the attention-weighted share of neighbours having each target)."""
    with torch.no_grad():
        att = aligner.attention(text).numpy()
    return ease.vote(att)


def rank_scores(model: TwoTower, ease: EaseIndex | None, emb: torch.Tensor,
                confirmed: np.ndarray | None, config: PosteriorConfig,
                vote: np.ndarray | None = None,
                log_probs: np.ndarray | None = None) -> np.ndarray:
    """What every caller ranks by, ``[M, N]``::

        log p(t | e) + beta * ease(confirmed)_t + rho * log(VOTE_FLOOR + vote_t)

    ``log_probs`` ``[M, N]``: ``log p(t | e)`` when the caller already has it.
    """
    if log_probs is None:
        with torch.no_grad():
            log_probs = model.log_probs(emb).numpy()
    out = np.asarray(log_probs, np.float64).copy()
    if ease is not None and config.beta > 0 and confirmed is not None and np.any(confirmed):
        out += config.beta * ease.scores(confirmed)
    if vote is not None and config.rho > 0:
        out += config.rho * np.log(VOTE_FLOOR + vote)
    return out


def _first_batch(x: torch.Tensor, shot: int, gen: torch.Generator) -> torch.Tensor:
    """A random ``shot`` of each row's positives ``[K, N]`` (all of them when fewer)."""
    r = torch.rand(x.shape, generator=gen) * x
    k = min(shot, x.shape[1])
    thr = torch.topk(r, k, dim=1).values[:, -1:]
    return ((r >= thr) & (x > 0)).to(x.dtype)


def meta_train(aligner: RetrievalAligner, model: TwoTower, text: torch.Tensor,
               positives: torch.Tensor, meta: SharedMetaConfig, update: PosteriorConfig,
               seed: int, progress: ProgressFn | None = None) -> list[dict[str, float]]:
    """Meta-train ``aligner`` on old items (Eq. 5-7 with the deployed update).

    Shapes: ``text [K, T]`` old items' text vectors (rows match the backbone's item ids),
    ``positives [K, N]`` their positive targets. Attention leaves each item's own row out.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(aligner.parameters(), lr=meta.lr, weight_decay=meta.weight_decay)
    own = torch.arange(len(text))
    target_emb = model.item_id.weight.detach()
    history = []
    for epoch in range(meta.epochs):
        aligner.train()
        e = aligner(text, own)  # [K, D]
        cold = multinomial_nll(model.log_probs(e), positives)
        first = _first_batch(positives, meta.shot, gen)
        rest = positives - first
        warm_e = posterior_update(model, e, first, None, update)
        warm = multinomial_nll(model.log_probs(warm_e), rest)
        distill = (e - target_emb).pow(2).sum(1).mean()
        loss = meta.alpha * cold + (1 - meta.alpha) * warm + meta.distill * distill
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append({"loss": float(loss.detach()), "cold": float(cold.detach()),
                        "warm": float(warm.detach()),
                        "distill": float(distill.detach())})
        if progress is not None and ((epoch + 1) % 25 == 0 or epoch + 1 == meta.epochs):
            progress(epoch + 1, meta.epochs, float(loss.detach()))
    aligner.eval()
    return history


class SharedRanker:
    """The shared-space EmerFlow as the product's :class:`engine.ranking.base.Ranker`.

    Args:
        model: the frozen ``TwoTower`` backbone.
        aligner: the meta-trained :class:`RetrievalAligner`.
        ease: the propagation index over old items' positives.
        config: the settings the parts were trained with (``update`` is used when serving).
    """

    kind = "twotower"

    def __init__(self, model: TwoTower, aligner: RetrievalAligner, ease: EaseIndex,
                 config: SharedConfig):
        self.model = model.eval()
        self.aligner = aligner.eval()
        self.ease = ease
        self.config = config
        with torch.no_grad():
            self.prior_log_probs = torch.log_softmax(model.bias, 0).numpy()  # [N] popularity

    @property
    def n_targets(self) -> int:
        return self.model.n_targets

    def align(self, text: np.ndarray) -> np.ndarray:
        """Text vectors ``[B, T]`` -> embeddings ``[B, D]``."""
        with torch.no_grad():
            return self.aligner(torch.from_numpy(np.asarray(text, np.float32))).numpy()

    def decision_rows(self, decisions: Decisions) -> tuple[np.ndarray, np.ndarray]:
        """Decisions -> ``[1, N]`` confirmed and rejected indicator rows."""
        pos = np.zeros((1, self.n_targets), np.float32)
        neg = np.zeros((1, self.n_targets), np.float32)
        pos[0, decisions.confirmed] = 1.0
        neg[0, decisions.rejected] = 1.0
        return pos, neg

    def refine(self, prior: np.ndarray, decisions: Decisions) -> np.ndarray:
        """:func:`posterior_update` of one text-generated embedding ``[D]`` with every decision
        so far -> ``[D]``."""
        pos, neg = self.decision_rows(decisions)
        with torch.no_grad():
            e = posterior_update(self.model, torch.from_numpy(np.asarray(prior, np.float32)[None]),
                                 torch.from_numpy(pos), torch.from_numpy(neg), self.config.update)
        return e[0].numpy()

    def vote(self, text: np.ndarray) -> np.ndarray:
        """:func:`neighbour_vote` of text vectors ``[B, T]`` -> ``[B, N]``."""
        return neighbour_vote(self.aligner, torch.from_numpy(np.asarray(text, np.float32)),
                              self.ease)

    def channels(self, text: np.ndarray, embedding: np.ndarray,
                 decisions: Decisions) -> dict[str, np.ndarray]:
        """The terms of :func:`rank_scores` for one item, ``[N]`` each: ``model`` (``log p(t |
        e)``), ``propagation`` (``beta * ease``), ``neighbours`` (``rho * log vote``), and the
        raw ``vote`` share and ``log_probs``."""
        e = torch.from_numpy(np.asarray(embedding, np.float32)[None])
        with torch.no_grad():
            log_probs = self.model.log_probs(e).numpy()[0]  # [N]
        upd = self.config.update
        vote = self.vote(np.asarray(text, np.float32)[None])[0]
        prop = np.zeros(self.n_targets)
        if upd.beta > 0 and decisions.n_confirmed:
            pos, _ = self.decision_rows(decisions)
            prop = upd.beta * self.ease.scores(pos)[0]
        neigh = upd.rho * np.log(VOTE_FLOOR + vote) if upd.rho > 0 else np.zeros(self.n_targets)
        return {"model": log_probs.astype(np.float64), "propagation": prop,
                "neighbours": neigh, "vote": vote, "log_probs": log_probs}

    def score(self, text: np.ndarray, embedding: np.ndarray, decisions: Decisions,
              categories: Sequence[str] = ()) -> Scored:
        """:func:`rank_scores` of one item (text vector ``[T]``, embedding ``[D]``) -> ``[N]``,
        with the lift ``p(t | e) / p(t)`` (``categories``: not read; the text carries them)."""
        ch = self.channels(text, embedding, decisions)
        scores = ch["model"] + ch["propagation"] + ch["neighbours"]
        return Scored(scores, np.exp(ch["log_probs"] - self.prior_log_probs))

    def explain(self, text: np.ndarray, embedding: np.ndarray, decisions: Decisions,
                rows: np.ndarray, target_names: Callable[[np.ndarray], list[str]],
                categories: Sequence[str] = ()) -> list[list[Reason]]:
        """The three terms of the score of each target row, in words, largest first."""
        ch = self.channels(text, embedding, decisions)
        out = []
        for r in np.asarray(rows, np.int64):
            parts = [
                Reason(f"the aligned embedding gives it {np.exp(ch['log_probs'][r]):.2%} of "
                       "the item's probability mass", float(ch["model"][r])),
                Reason(f"{ch['vote'][r]:.0%} of the most similar established items (attention-"
                       "weighted) have it", float(ch["neighbours"][r])),
            ]
            if decisions.n_confirmed:
                parts.append(Reason("co-associated with the confirmed targets (EASE)",
                                    float(ch["propagation"][r])))
            out.append(sorted(parts, key=lambda p: -abs(p.weight)))
        return out

    def probabilities(self, emb: np.ndarray) -> np.ndarray:
        """``p(t | e)`` ``[N]``: the chance that the item's next confirmed target is ``t``."""
        with torch.no_grad():
            e = torch.from_numpy(np.asarray(emb, np.float32)[None])
            return torch.softmax(self.model.logits(e), 1)[0].numpy()

    def item_vectors(self) -> np.ndarray:
        """The backbone's own ID embeddings of the established items ``[K, D]``."""
        return self.model.item_id.weight.detach().numpy()

    def save(self, directory: Path) -> dict:
        """``twotower.pt`` and ``shared_aligner.pt`` (``state_dict``s) plus their JSON info."""
        torch.save(self.model.state_dict(), directory / "twotower.pt")
        torch.save(self.aligner.state_dict(), directory / "shared_aligner.pt")
        return {"n_items": self.model.item_id.num_embeddings, "n_targets": self.n_targets,
                "text_dim": self.aligner.text_dim, "hidden": self.aligner.hidden,
                "config": asdict(self.config)}

    @classmethod
    def load(cls, directory: Path, info: dict, old_positives: sparse.spmatrix) -> SharedRanker:
        """Inverse of :meth:`save` (``weights_only=True``); the EASE index is recomputed from
        the old items' positives ``[K, N]``."""
        config = SharedConfig.from_dict(info["config"])
        n_items, n_targets = int(info["n_items"]), int(info["n_targets"])
        model = TwoTower(n_items, n_targets, config.twotower)
        model.load_state_dict(torch.load(directory / "twotower.pt", weights_only=True))
        for p in model.parameters():
            p.requires_grad_(False)
        aligner = RetrievalAligner(torch.zeros(n_items, int(info["text_dim"])),
                                   torch.zeros(n_items, config.twotower.dim), int(info["hidden"]),
                                   config.meta.dropout, config.meta.temperature)
        aligner.load_state_dict(torch.load(directory / "shared_aligner.pt", weights_only=True))
        return cls(model, aligner, EaseIndex(old_positives, config.meta.ease_lam), config)


def train_shared(text: np.ndarray, positives: np.ndarray, config: SharedConfig, seed: int,
                 progress: Callable[[str, float, str], None] | None = None,
                 backbones: dict | None = None) -> SharedRanker:
    """Pretrain the ``TwoTower`` on old items' positives ``[K, N]``, meta-train the aligner on
    their text vectors ``[K, T]``, index EASE: the one training path of the shared space.

    ``backbones``: a dict kept across calls on the same data (the benchmark's context): the
    pretrained backbone's ``state_dict`` per (seed, backbone settings, positives), so methods
    that differ only in their text (``emerflow-tt-nollm``, ``emerflow-tt``, ...) pretrain it
    once. Pretraining depends on nothing else, and the generator is reseeded after it, so
    every value is as if it had been trained again.
    """
    from engine.models.twotower import pretrain_twotower

    torch.manual_seed(seed)  # the initialization too: the same seed gives the same ranker
    model = TwoTower(len(positives), positives.shape[1], config.twotower)
    key = ("twotower", seed, dataclasses.astuple(config.twotower),
           hashlib.sha1(np.ascontiguousarray(positives, np.float32).tobytes()).hexdigest())
    if backbones is not None and key in backbones:
        model.load_state_dict(backbones[key])
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
    else:
        pretrain_twotower(model, positives, seed, None if progress is None else (
            lambda e, n, loss: progress("backbone", e / n, f"shared backbone epoch {e}/{n}: "
                                                           f"loss {loss:.4f}")))
        if backbones is not None:
            backbones[key] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    meta = config.meta
    torch.manual_seed(seed)
    text_t = torch.from_numpy(np.asarray(text, np.float32))
    aligner = RetrievalAligner(text_t, model.item_id.weight.detach(), meta.hidden, meta.dropout,
                               meta.temperature)
    meta_train(aligner, model, text_t, torch.from_numpy(np.asarray(positives, np.float32)), meta,
               config.update, seed, None if progress is None else (
                   lambda e, n, loss: progress("meta", e / n, f"aligner epoch {e}/{n}: "
                                                              f"loss {loss:.4f}")))
    return SharedRanker(model, aligner, EaseIndex(positives, meta.ease_lam), config)
