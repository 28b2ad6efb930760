"""Fast, exact serving of the learned ranker: one tree walk per distinct split pattern, and a
small memo of one item's features and scores.

:class:`SplitPatterns`: a row's LightGBM prediction depends on its feature values only through
the split decisions along its paths (``value <= threshold`` for numerical splits, category
membership for categorical ones; a fixed sum of leaf values in tree order). Two rows whose
values lie between the same consecutive thresholds of every feature (and agree on the missing-
value tests) take the same path in every tree and get bit-identical predictions. A catalog's
targets mostly differ only in features the trees cut coarsely (popularity, votes of 0), so
predicting one representative row per distinct pattern and scattering the result back is
exact and several times cheaper than predicting every row.

:class:`FeatureMemo`: the features and scores of the last few (item text, decisions) keys, so
one analyst action scores the catalog once (the rerun, the phase history and "why this rank"
read it again), bounded in bytes.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

#: LightGBM's ``kZeroThreshold`` (``1e-35f``): its dense-row reader drops values with ``|x| <=
#: this`` (they are read as 0.0), and ``missing_type == Zero`` tests the same bound.
K_ZERO_THRESHOLD = float(np.float32(1e-35))


class SplitPatterns:
    """Per feature, the thresholds (numerical) or the categorical flag of a booster's splits.

    Args:
        booster: a trained ``lightgbm.Booster``.
        n_features: the number of feature columns it was trained on.
    """

    def __init__(self, booster, n_features: int):
        thresholds: list[set[float]] = [set() for _ in range(n_features)]
        self.categorical = np.zeros(n_features, bool)
        self.zero_missing = np.zeros(n_features, bool)
        dump = booster.dump_model()
        stack = [t["tree_structure"] for t in dump["tree_info"]]
        while stack:
            node = stack.pop()
            if "split_feature" not in node:
                continue
            f = int(node["split_feature"])
            if node["decision_type"] == "==":
                self.categorical[f] = True
            else:
                thresholds[f].add(float(node["threshold"]))
                if node.get("missing_type") == "Zero":
                    self.zero_missing[f] = True
            stack.extend((node["left_child"], node["right_child"]))
        self.thresholds = [np.array(sorted(t), np.float64) for t in thresholds]
        self.used = np.array([bool(t) or c for t, c in zip(thresholds, self.categorical,
                                                            strict=True)])

    def _column_codes(self, x: np.ndarray):
        """Per used feature, (int codes ``[N]``, radix): equal code rows take the same path in
        every tree. Numerical: the number of thresholds below the value (``value <= t`` holds
        exactly for the thresholds from that index on); zero (when a split treats zero as
        missing) and NaN get codes of their own, so the radix is ``len(thresholds) + 3``.
        Categorical: the value's rank among the column's distinct values (NaN one value).
        Values LightGBM reads as 0.0 (``|x| <= K_ZERO_THRESHOLD``) are coded as 0.0. Columns
        are read once, contiguously, in their own precision (float32 compares exactly with
        the float64 thresholds)."""
        used = np.flatnonzero(self.used)
        cols = np.ascontiguousarray(np.asarray(x)[:, used].T)  # [F', N]
        for f, v in zip(used, cols, strict=True):
            tiny = (np.abs(v) <= K_ZERO_THRESHOLD) & (v != 0)
            if tiny.any():
                v = np.where(tiny, 0, v)
            if self.categorical[f]:
                distinct, code = np.unique(v, return_inverse=True)
                yield code.reshape(-1).astype(np.int64), len(distinct) + 1
                continue
            t = self.thresholds[f]
            code = np.searchsorted(t, v, side="left").astype(np.int64)
            if self.zero_missing[f]:
                code[v == 0] = len(t) + 1
            nan = np.isnan(v)
            if nan.any():
                code[nan] = len(t) + 2
            yield code, len(t) + 3

    def codes(self, x: np.ndarray) -> np.ndarray:
        """``[N, F]`` rows -> ``[N, F']`` int codes (used features only), see
        :meth:`_column_codes`."""
        cols = [code for code, _ in self._column_codes(x)]
        if not cols:
            return np.zeros((len(x), 0), np.int64)
        return np.stack(cols, axis=1)

    def groups(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(one representative row per distinct pattern ``[U]``, each row's pattern ``[N]``).

        The codes are packed in mixed radix into as few int64 words as fit, then hashed
        (``pandas.factorize``, linear time) word by word; any row of a pattern represents it,
        since every row of it gets the same prediction."""
        import pandas as pd

        n = len(x)
        words, cur, cap = [], None, 1
        for code, radix in self._column_codes(x):
            if cur is not None and cap * radix >= 2 ** 62:
                words.append(cur)
                cur, cap = None, 1
            cur = code if cur is None else cur * radix + code
            cap *= radix
        if cur is not None:
            words.append(cur)
        if not words:
            return np.zeros(min(n, 1), np.int64), np.zeros(n, np.int64)
        inverse, uniques = pd.factorize(words[0])
        for w in words[1:]:
            other, other_uniques = pd.factorize(w)
            inverse, uniques = pd.factorize(inverse.astype(np.int64) * len(other_uniques)
                                            + other)
        inverse = inverse.astype(np.int64)
        first = np.empty(len(uniques), np.int64)
        first[inverse] = np.arange(n, dtype=np.int64)
        return first, inverse

    def predict(self, booster, x: np.ndarray, num_threads: int) -> np.ndarray:
        """``booster.predict(x)`` ``[N]`` float64, bit-identical, walking the trees once per
        distinct pattern."""
        first, inverse = self.groups(x)
        if len(first) >= len(x):
            return np.asarray(booster.predict(x, num_threads=num_threads), np.float64)
        pred = np.asarray(booster.predict(np.ascontiguousarray(x[first]),
                                          num_threads=num_threads), np.float64)
        return pred[inverse]


_CONTROLLER = None


def one_blas_thread():
    """A context in which BLAS (numpy/scipy) runs on one thread. The learned ranker's dense
    products are small (``[16, T] @ [T, K]``, ``[M, K] @ [K, K]``): a second BLAS thread saves
    nothing, and on a loaded machine waiting for it to be scheduled made them 10-100x slower
    (similarities and EASE took 60 of 155 s of MovieLens list building at load 25). BLAS
    splits these products over output blocks, never over the summed dimension, so every value
    is bit-identical (checked against saved lists and scores).
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


def decision_key(text: np.ndarray, confirmed: np.ndarray, rejected: np.ndarray) -> bytes:
    """A digest of one item's inputs: its text vector and the sorted decision rows."""
    h = hashlib.blake2b(digest_size=20)
    for a in (np.ascontiguousarray(text, np.float32),
              np.sort(np.asarray(confirmed, np.int64)), np.sort(np.asarray(rejected, np.int64))):
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.digest()


class FeatureMemo:
    """The features ``[N, F]`` and scores ``[N]`` of the last few keys (least recently used
    dropped first; at most ``max_bytes`` held). Thread-safe; values are never mutated."""

    def __init__(self, max_entries: int = 8, max_bytes: int = 64 << 20):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._data: OrderedDict[bytes, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> tuple[np.ndarray, np.ndarray] | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: bytes, features: np.ndarray, scores: np.ndarray) -> None:
        size = features.nbytes + scores.nbytes
        if size > self.max_bytes:
            return
        features.setflags(write=False)
        scores.setflags(write=False)
        with self._lock:
            self._data[key] = (features, scores)
            self._data.move_to_end(key)
            total = sum(f.nbytes + s.nbytes for f, s in self._data.values())
            while self._data and (len(self._data) > self.max_entries or total > self.max_bytes):
                _, (f, s) = self._data.popitem(last=False)
                total -= f.nbytes + s.nbytes

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
