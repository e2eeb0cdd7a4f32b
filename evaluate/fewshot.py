"""Few-shot evaluation by episodes (pure functions): N-way K-shot tasks drawn from one split's frozen
features, each solved by a prototype classifier and by logistic regression, reported as the mean
accuracy over episodes with its 95 % confidence interval.

As in Ericsson et al., "How Well Do Self-Supervised Models Transfer?" (CVPR 2021, ssl-transfer's
few-shot protocol: 5-way 1 / 5 / 20-shot, 600 episodes, mean +- 95 % CI) and the few-shot literature
it follows (Snell et al., "Prototypical Networks", NeurIPS 2017: the nearest class mean under
cosine similarity; Tian et al., "Rethinking Few-Shot Image Classification", ECCV 2020: logistic
regression on frozen features). An episode draws N classes, then K support and Q query images of
each, all without replacement, with a generator seeded by (seed, episode); features are L2
normalised. CI: 1.96 x the standard deviation over episodes / sqrt(episodes).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

N_EPISODES_MIN = 600


@dataclass(frozen=True)
class FewShotConfig:
    """ways: classes per episode; shots: support images per class (one result per value); queries:
    query images per class; episodes: tasks per shot count (>= 600 for the reported CIs);
    classifiers: ``prototype`` and / or ``logistic``; c: the logistic regression's inverse L2
    strength (scikit-learn's C); seed: the episode draws'."""

    ways: int = 5
    shots: tuple[int, ...] = (1, 5, 20)
    queries: int = 15
    episodes: int = 600
    classifiers: tuple[str, ...] = ("prototype", "logistic")
    c: float = 1.0
    seed: int = 0


def check_config(cfg: FewShotConfig) -> None:
    """ValueError naming the setting that cannot work."""
    if cfg.ways < 2:
        raise ValueError(f"few-shot ways must be at least 2, got {cfg.ways}")
    if not cfg.shots or min(cfg.shots) < 1 or cfg.queries < 1:
        raise ValueError(f"few-shot shots and queries must be positive, got shots {list(cfg.shots)}, "
                         f"queries {cfg.queries}")
    if cfg.episodes < 1:
        raise ValueError(f"few-shot episodes must be positive, got {cfg.episodes}")
    bad = [c for c in cfg.classifiers if c not in CLASSIFIERS]
    if bad or not cfg.classifiers:
        raise ValueError(f"unknown few-shot classifier {bad or cfg.classifiers}; valid: {', '.join(CLASSIFIERS)}")


def episode(targets: np.ndarray, ways: int, shots: int, queries: int,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One task: (support indices (ways*shots,), support labels 0..ways-1, query indices
    (ways*queries,), query labels), from the classes with at least shots + queries examples."""
    classes, counts = np.unique(targets[targets >= 0], return_counts=True)
    eligible = classes[counts >= shots + queries]
    if eligible.size < ways:
        raise ValueError(f"a {ways}-way {shots}-shot episode with {queries} queries needs {ways} classes of at least "
                         f"{shots + queries} images; {eligible.size} classes have that many")
    chosen = rng.choice(eligible, size=ways, replace=False)
    support, query = [], []
    for c in chosen:
        picks = rng.choice(np.flatnonzero(targets == c), size=shots + queries, replace=False)
        support.append(picks[:shots])
        query.append(picks[shots:])
    return (np.concatenate(support), np.repeat(np.arange(ways), shots),
            np.concatenate(query), np.repeat(np.arange(ways), queries))


def prototype_accuracy(xs: np.ndarray, ys: np.ndarray, xq: np.ndarray, yq: np.ndarray, c: float = 1.0) -> float:
    """Nearest class mean under cosine similarity: accuracy (%) on the queries. xs (S, D), xq (Q, D)
    L2-normalised; ys, yq in 0..ways-1."""
    ways = int(ys.max()) + 1
    protos = np.stack([xs[ys == k].mean(0) for k in range(ways)])
    protos /= np.linalg.norm(protos, axis=1, keepdims=True) + 1e-12
    return 100.0 * float(((xq @ protos.T).argmax(1) == yq).mean())


def logistic_accuracy(xs: np.ndarray, ys: np.ndarray, xq: np.ndarray, yq: np.ndarray, c: float = 1.0) -> float:
    """Multinomial logistic regression (L-BFGS, inverse L2 strength ``c``) fit on the support set:
    accuracy (%) on the queries."""
    from sklearn.linear_model import LogisticRegression
    clf = LogisticRegression(C=c, max_iter=1000)
    clf.fit(xs, ys)
    return 100.0 * float((clf.predict(xq) == yq).mean())


CLASSIFIERS: dict[str, Callable[..., float]] = {"prototype": prototype_accuracy, "logistic": logistic_accuracy}


def mean_ci(values: np.ndarray) -> tuple[float, float]:
    """(mean, 95 % CI half-width = 1.96 sd / sqrt(n)) of per-episode accuracies."""
    values = np.asarray(values, dtype=np.float64)
    sd = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return float(values.mean()), 1.96 * sd / math.sqrt(values.size)


def few_shot(features: np.ndarray, targets: np.ndarray, cfg: FewShotConfig) -> dict[str, tuple[float, float, int]]:
    """``{"<classifier>@<ways>way<shots>shot": (mean %, CI half-width, episodes)}`` over ``cfg.episodes``
    episodes per shot count, every classifier scored on the same episodes."""
    check_config(cfg)
    x = np.asarray(features, dtype=np.float64)
    x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
    out: dict[str, tuple[float, float, int]] = {}
    for shots in cfg.shots:
        accs: dict[str, list[float]] = {name: [] for name in cfg.classifiers}
        for e in range(cfg.episodes):
            rng = np.random.default_rng([cfg.seed, shots, e])
            s, ys, q, yq = episode(targets, cfg.ways, shots, cfg.queries, rng)
            for name in cfg.classifiers:
                accs[name].append(CLASSIFIERS[name](x[s], ys, x[q], yq, cfg.c))
        for name, values in accs.items():
            mean, half = mean_ci(np.asarray(values))
            out[f"{name}@{cfg.ways}way{shots}shot"] = (mean, half, cfg.episodes)
    return out
