"""Few-shot episodes (evaluate.fewshot): episodes are well-formed and seeded, the classifiers agree
with brute force, and the CI is the normal-approximation half-width."""
from __future__ import annotations

import numpy as np
import pytest

from evaluate.fewshot import CLASSIFIERS, FewShotConfig, episode, few_shot, mean_ci, prototype_accuracy


def _blobs(classes: int = 8, per: int = 30, dim: int = 16, spread: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))
    x = np.concatenate([c + spread * rng.normal(size=(per, dim)) for c in centres])
    return x, np.repeat(np.arange(classes), per)


def test_an_episode_has_distinct_classes_and_disjoint_support_and_query() -> None:
    _, y = _blobs()
    s, ys, q, yq = episode(y, 5, 3, 4, np.random.default_rng(1))
    assert len(s) == 15 and len(q) == 20 and not set(s) & set(q)
    assert np.array_equal(np.bincount(ys), np.full(5, 3)) and np.array_equal(np.bincount(yq), np.full(5, 4))
    # each episode label maps to one true class, different per label
    true = {int(k): set(y[s][ys == k]) | set(y[q][yq == k]) for k in range(5)}
    assert all(len(v) == 1 for v in true.values()) and len(set.union(*true.values())) == 5


def test_prototype_accuracy_is_the_nearest_normalised_mean() -> None:
    x, y = _blobs(classes=3, per=10)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    s, q = np.arange(0, 30, 2), np.arange(1, 30, 2)
    acc = prototype_accuracy(x[s], y[s], x[q], y[q])
    means = [x[s][y[s] == k].mean(0) for k in range(3)]
    brute = [int(np.argmax([xi @ m / np.linalg.norm(m) for m in means])) for xi in x[q]]
    assert acc == pytest.approx(100 * np.mean(np.array(brute) == y[q]))


@pytest.mark.parametrize("classifier", sorted(CLASSIFIERS))
def test_separable_classes_are_solved_and_noise_is_at_chance(classifier: str) -> None:
    cfg = FewShotConfig(ways=5, shots=(5,), queries=5, episodes=40, classifiers=(classifier,))
    x, y = _blobs(spread=0.05)
    assert few_shot(x, y, cfg)[f"{classifier}@5way5shot"][0] > 95
    noise = np.random.default_rng(3).normal(size=x.shape)
    mean, half, n = few_shot(noise, y, cfg)[f"{classifier}@5way5shot"]
    assert abs(mean - 20) < 3 * half + 5 and n == 40


def test_results_are_seeded_and_the_ci_is_normal() -> None:
    x, y = _blobs(spread=1.0)
    cfg = FewShotConfig(shots=(1,), episodes=30, classifiers=("prototype",))
    assert few_shot(x, y, cfg) == few_shot(x, y, cfg)
    mean, half = mean_ci(np.array([10.0, 20.0, 30.0]))
    assert mean == 20 and half == pytest.approx(1.96 * 10 / np.sqrt(3))


def test_too_few_images_per_class_is_one_clear_error() -> None:
    x, y = _blobs(per=5)
    with pytest.raises(ValueError, match="needs 5 classes of at least 21 images; 0 classes"):
        few_shot(x, y, FewShotConfig(shots=(20,), queries=1, episodes=2))
