"""TwoNN finds the dimension of data whose dimension is known, agrees with scikit-dimension,
and gets the nearest neighbours exactly right however it blocks the work.

About the test data: TwoNN assumes the density is uniform out to each point's second
neighbour. Uniform data with an edge break that in high dimension, where most points lie
within r2 of the edge: with 4,000 points a uniform 10-cube reads 8.7 and a 20-cube 15.8
(the same numbers from scikit-dimension). So d <= 5 is tested on uniform balls, and every d
on isotropic Gaussians, which have no edge. Even so, at d = 20 the estimate is 17.3 with
4,000 points and approaches 20 only slowly (17.9 at 16,000, 18.2-18.4 at 48,000), so the
d = 20 cases use 48,000 points rather than a looser tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_swiss_roll

from edgecompress.analysis import pca_dimension, twonn
from edgecompress.analysis.neighbours import brute_force_two_nearest, two_nearest
from edgecompress.errors import DataError, EdgeCompressError

pytestmark = pytest.mark.slow  # deploys, fine-tunes, SSH boards or firmware builds: `pytest -m 'not slow'` skips them

AMBIENT = 100
POINTS_FOR = {2: 4000, 5: 4000, 10: 4000, 20: 48_000}


def rotate_into_ambient(z: np.ndarray, rng: np.random.Generator, ambient: int = AMBIENT) -> np.ndarray:
    """Place the points in a random orientation of a higher-dimensional space (distances unchanged)."""
    rotation, _ = np.linalg.qr(rng.standard_normal((ambient, ambient)))
    return np.pad(z, ((0, 0), (0, ambient - z.shape[1]))) @ rotation.T


def uniform_ball(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    directions = rng.standard_normal((n, d))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return directions * rng.random((n, 1)) ** (1 / d)


def gaussian(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((n, d))


def bent_gaussian(n: int, d: int, rng: np.random.Generator, radius: float = 3.0) -> np.ndarray:
    """A Gaussian whose every coordinate is bent onto a circular arc: a curved d-manifold in 2d dimensions."""
    z = rng.standard_normal((n, d))
    return np.concatenate([radius * np.sin(z / radius), radius * np.cos(z / radius)], axis=1)


def relu_features(n: int, d: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Activation-like data: a wide float32 ReLU layer applied to a d-dimensional latent."""
    return np.maximum(rng.standard_normal((n, d)) @ rng.standard_normal((d, width)), 0).astype(np.float32)


@pytest.mark.parametrize(
    ("d", "sampler"),
    [(2, uniform_ball), (5, uniform_ball), (2, gaussian), (5, gaussian), (10, gaussian), (20, gaussian)],
)
def test_dimension_of_points_on_a_linear_subspace_is_found_within_10_percent(d, sampler):
    rng = np.random.default_rng(d)
    x = rotate_into_ambient(sampler(POINTS_FOR[d], d, rng), rng)

    result = twonn(x)

    assert result.d == pytest.approx(d, rel=0.10)
    assert result.n_used == len(x) and result.n_duplicates_dropped == 0


@pytest.mark.parametrize("d", [5, 10, 20])
def test_dimension_of_a_curved_manifold_is_found_within_10_percent(d):
    rng = np.random.default_rng(100 + d)
    x = rotate_into_ambient(bent_gaussian(POINTS_FOR[d], d, rng), rng)

    assert twonn(x).d == pytest.approx(d, rel=0.10)
    # The manifold really is curved: a linear method needs more than d directions for it.
    assert pca_dimension(x[:4000]) > d


def test_dimension_of_the_swiss_roll_is_two_although_it_fills_three_linear_dimensions():
    rng = np.random.default_rng(7)
    roll, _ = make_swiss_roll(4000, random_state=7)
    x = rotate_into_ambient(roll, rng)

    assert twonn(x).d == pytest.approx(2, rel=0.10)
    assert pca_dimension(x) == 3


def test_maximum_likelihood_variant_agrees_with_the_line_fit():
    rng = np.random.default_rng(3)
    x = rotate_into_ambient(gaussian(4000, 5, rng), rng)

    assert twonn(x, method="mle").d == pytest.approx(5, rel=0.10)


@pytest.mark.parametrize("method", ["linear", "mle"])
@pytest.mark.parametrize("discard_fraction", [0.1, 0.25])
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda rng: rotate_into_ambient(gaussian(2000, 6, rng), rng), id="gaussian-6d-in-100d"),
        pytest.param(lambda rng: rotate_into_ambient(bent_gaussian(2000, 8, rng), rng, 20), id="curved-8d-in-20d"),
        pytest.param(lambda rng: make_swiss_roll(1500, random_state=1)[0], id="swiss-roll-3d"),
        pytest.param(lambda rng: relu_features(1000, 10, 3000, rng), id="relu-features-3000d"),
    ],
)
def test_agrees_with_scikit_dimension_on_the_same_points(make, discard_fraction, method):
    skdim = pytest.importorskip("skdim")
    x = make(np.random.default_rng(11))

    reference = skdim.id.TwoNN(discard_fraction=discard_fraction, method=method).fit(x).dimension_
    ours = twonn(x, discard_fraction=discard_fraction, method=method).d

    # The issue asks for 2%; both fit the same law to the same neighbours, so they agree to float32 rounding.
    assert ours == pytest.approx(reference, rel=1e-4)


def test_duplicate_points_are_dropped_and_counted():
    rng = np.random.default_rng(5)
    distinct = rotate_into_ambient(gaussian(600, 4, rng), rng).astype(np.float32)
    copies = distinct[rng.choice(600, 37, replace=False)]
    signed_zero = np.zeros((2, distinct.shape[1]), dtype=np.float32)
    signed_zero[1] = -0.0  # equal to +0.0: a duplicate, though its bytes differ
    x = np.concatenate([distinct, copies, signed_zero])[rng.permutation(639)]

    result = twonn(x)

    assert result.n_duplicates_dropped == 37 + 1
    assert result.n_used == 600 + 1
    assert result.d == pytest.approx(twonn(np.concatenate([distinct, signed_zero[:1]])).d, rel=1e-12)


def test_near_duplicates_are_kept_with_their_true_tiny_distances():
    """Float32 ||a||^2 + ||b||^2 - 2ab cancels for close points far from the origin; r1, r2 must not."""
    rng = np.random.default_rng(6)
    base = (1000.0 + rng.standard_normal((200, 64))).astype(np.float32)
    nudged = base[:50].copy()
    nudged[:, 0] += np.float32(0.002)  # ~1e-6 of the norm: distinct, but below float32's cancellation error
    x = np.concatenate([base, nudged])

    r1, r2 = brute_force_two_nearest(x)
    [found] = two_nearest(x, [np.arange(len(x))])

    assert twonn(x).n_duplicates_dropped == 0
    np.testing.assert_allclose(found.r1, r1, rtol=1e-5)
    np.testing.assert_allclose(found.r2, r2, rtol=1e-5)
    nudge = nudged[:, 0].astype(np.float64) - base[:50, 0]  # 0.002 as float32 can represent it near 1000
    np.testing.assert_allclose(found.r1[:50], nudge, rtol=1e-6)


@pytest.mark.parametrize("block_size", [None, 1, 7, 64])
def test_blocked_search_equals_brute_force_on_every_subset(block_size):
    rng = np.random.default_rng(block_size or 0)
    x = (50.0 + rng.standard_normal((300, 40))).astype(np.float32)
    subsets = [np.arange(300), np.sort(rng.choice(300, 150, replace=False)), np.array([3, 9, 250, 299])]

    found = two_nearest(x, subsets, block_size=block_size)

    for subset, neighbours in zip(subsets, found):
        r1, r2 = brute_force_two_nearest(x[subset])
        np.testing.assert_array_equal(neighbours.rows, subset)
        np.testing.assert_allclose(neighbours.r1, r1, rtol=1e-6)
        np.testing.assert_allclose(neighbours.r2, r2, rtol=1e-6)


def test_input_that_cannot_give_a_dimension_is_refused_with_a_fix():
    with pytest.raises(DataError, match="NaN or infinite") as raised:
        twonn(np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    assert raised.value.fix
    with pytest.raises(DataError, match="distinct point"):
        twonn(np.ones((50, 3)))
    with pytest.raises(EdgeCompressError, match="method"):
        twonn(np.random.default_rng(0).random((50, 3)), method="median")


@pytest.mark.parametrize("n_samples", [1500, 40])  # more samples than features, and fewer (Gram path)
def test_pca_dimension_counts_the_components_for_99_percent_of_the_variance(n_samples):
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(8)
    x = rotate_into_ambient(rng.standard_normal((n_samples, 7)) * np.linspace(1, 2, 7), rng)
    x += 1e-3 * rng.standard_normal(x.shape)
    explained = np.cumsum(PCA().fit(x).explained_variance_ratio_)

    assert pca_dimension(x) == 7 == np.searchsorted(explained, 0.99) + 1
