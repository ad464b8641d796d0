"""First and second nearest-neighbour distances, exact, in bounded memory.

TwoNN needs only r1 and r2 per point, but activations are up to ~30k wide and N is in the
thousands, so this is a brute-force k-NN dominated by one matrix product. We do it with
float32 BLAS in row blocks (||a||^2 + ||b||^2 - 2 a.b), which is the fastest exact method
available here: scikit-learn's brute k-NN (float64 products; 2.9 s against 0.5 s for one
2000 x 32768 layer on 2 idle cores) is several times slower, and faiss' flat index is the
same sgemm plus a heap, as an extra binary dependency. Doing the pass ourselves also lets
one matrix product serve the full set *and* every random subsample used for error bars.

The float32 expansion cancels badly when two points are close relative to their norms, so
it only *proposes* a few candidates per point; their distances are then recomputed
directly from coordinate differences, which is exact up to rounding of the result. Data
far from the origin relative to its spread is centred first, so that the proposals are right.
Exact duplicate rows are found by hashing the rows' bytes and are removed before the
search (float32 would give them tiny nonzero distances, not zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Working memory for one block (distance rows, gathered candidates), not counting `x`.
DEFAULT_BLOCK_BYTES = 128 * 2**20

#: Search a centred copy when the squared norm of the mean exceeds this multiple of the
#: variance (float32 cancellation would then exceed ~1e-5 of typical squared distances).
CENTRING_RATIO = 100.0

#: Candidates proposed by the float32 pass before exact re-ranking. Two are needed; the
#: rest absorb re-ordering caused by float32 rounding among near-equal distances.
N_CANDIDATES = 3


@dataclass(frozen=True)
class NeighbourDistances:
    """r1 and r2 of each point of one subset, measured within that subset only."""

    rows: np.ndarray  # indices into x of the subset's points
    r1: np.ndarray  # float64, distance to the nearest other point of the subset
    r2: np.ndarray  # float64, distance to the second nearest


def distinct_rows(x: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of every distinct row of `x` (sorted).

    Rows are compared bit for bit after mapping -0.0 to 0.0. Hashing each row's bytes is
    linear in the data size and needs no sorted copy of `x` (np.unique(axis=0) makes one,
    which is 1.3 GB for 10,000 x 32,768 float32); hash collisions are verified, never trusted.
    """
    rows = np.ascontiguousarray(x).reshape(len(x), -1)
    keys = np.fromiter((hash(_canonical_bytes(row)) for row in rows), dtype=np.int64, count=len(rows))
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    representative = first[inverse]
    keep = representative == np.arange(len(rows))
    for i in np.flatnonzero(~keep):  # only rows whose hash was already seen
        if not np.array_equal(rows[i], rows[representative[i]]):
            keep[i] = True  # a genuine hash collision: the row is distinct
    return np.flatnonzero(keep)


def _canonical_bytes(row: np.ndarray) -> bytes:
    return (row + row.dtype.type(0)).tobytes()  # -0.0 + 0.0 == +0.0, so both hash alike


def two_nearest(
    x: np.ndarray, subsets: Sequence[np.ndarray], *, block_size: int | None = None
) -> list[NeighbourDistances]:
    """r1, r2 of every point of each subset (index arrays into `x`, rows distinct).

    All subsets share one blocked pass over `x`: each block of query rows is multiplied
    with all of `x` once, then every subset masks out the columns it does not contain.
    Extra memory is two (block_size x N) float32 blocks, plus a float32 copy of `x` only
    if `x` is not float32 or lies far from the origin relative to its spread.
    """
    if any(len(subset) < 3 for subset in subsets):
        raise ValueError("each subset needs at least 3 distinct points")
    data = x.reshape(len(x), -1)
    if not np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float64)  # integer differences would wrap around
    x32 = _search_array(data)
    n = len(x32)
    members = [_membership(n, subset) for subset in subsets]
    queried = np.logical_or.reduce(members)
    rows_per_block = block_size or _rows_per_block(n)
    half_squared_norms = _half_squared_norms(x32)
    # Adding +inf to a column removes it from a subset's search without copying x;
    # None marks a subset that holds every row and needs no mask.
    column_masks = [None if member.all() else np.where(member, np.float32(0), np.float32(np.inf)) for member in members]

    candidates = [np.empty((n, min(N_CANDIDATES, len(s) - 1)), dtype=np.int64) for s in subsets]
    # Blocks are contiguous row ranges, so query rows are views of x, never copies.
    for start in range(0, n, rows_per_block):
        stop = min(n, start + rows_per_block)
        if not queried[start:stop].any():
            continue
        scores = _ranking_scores(x32, start, stop, half_squared_norms)
        for member, column_mask, found in zip(members, column_masks, candidates):
            in_subset = member[start:stop]
            if column_mask is None:
                masked = scores
            elif in_subset.any():
                masked = scores[in_subset] + column_mask
            else:
                continue
            found[start + np.flatnonzero(in_subset)] = _smallest_columns(masked, found.shape[1])

    return _rerank_exactly(data, [np.sort(subset) for subset in subsets], candidates)


def brute_force_two_nearest(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """r1, r2 from the full float64 distance matrix: the reference for small arrays only."""
    data = x.reshape(len(x), -1).astype(np.float64)
    diff = data[:, None, :] - data[None, :, :]
    distances = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    np.fill_diagonal(distances, np.inf)
    nearest = np.sort(distances, axis=1)
    return nearest[:, 0], nearest[:, 1]


def _membership(n: int, subset: np.ndarray) -> np.ndarray:
    member = np.zeros(n, dtype=bool)
    member[subset] = True
    return member


def _search_array(data: np.ndarray) -> np.ndarray:
    """The float32 array the candidates are ranked on: `data` itself when that is safe.

    The float32 expansion loses about eps * ||x||^2 to cancellation, so data far from the
    origin relative to its spread (an offset, e.g. ReLU outputs of a saturated layer) would
    rank neighbours on noise. Such data is searched as a centred float32 copy; so is data
    that needs a float32 copy anyway. Well-spread float32 data is used in place.
    """
    mean = data.mean(axis=0, dtype=np.float64)
    if data.dtype == np.float32 and data.flags.c_contiguous:
        mean_square_norm = float(np.einsum("ij,ij->i", data, data).mean(dtype=np.float64))
        offset = float(mean @ mean)
        if offset <= CENTRING_RATIO * max(mean_square_norm - offset, 0.0):
            return data
    centred = np.empty(data.shape, dtype=np.float32)
    step = max(1, DEFAULT_BLOCK_BYTES // (8 * data.shape[1]))
    for start in range(0, len(data), step):
        centred[start : start + step] = data[start : start + step] - mean
    return centred


def _rows_per_block(n: int) -> int:
    """Rows whose score block and one masked copy of it fit DEFAULT_BLOCK_BYTES."""
    return int(max(32, min(n, DEFAULT_BLOCK_BYTES // (2 * 4 * n))))


def _half_squared_norms(x32: np.ndarray) -> np.ndarray:
    # float32 like the products they are combined with: ranking only needs that accuracy.
    return np.float32(0.5) * np.einsum("ij,ij->i", x32, x32)


def _ranking_scores(x32: np.ndarray, start: int, stop: int, half_squared_norms: np.ndarray) -> np.ndarray:
    """||b||^2 / 2 - a.b for the rows a = x32[start:stop] against every row b, self excluded (inf).

    Within a row this orders candidates exactly as ||a - b||^2 = ||a||^2 + 2 (score) does,
    and costs one pass over the block after the matrix product instead of four. When one
    block holds every row the product is x32 @ x32.T, which NumPy computes as a symmetric
    rank-k update (half the work).
    """
    queries = x32 if (start, stop) == (0, len(x32)) else x32[start:stop]
    scores = queries @ x32.T
    np.subtract(half_squared_norms[None, :], scores, out=scores)
    rows = np.arange(stop - start)
    scores[rows, start + rows] = np.inf
    return scores


def _smallest_columns(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k smallest scores of each row, in order.

    k SIMD argmin passes (masking each winner, then restoring it) take about a third of
    the time of one argpartition for the small k needed here, and leave `scores` unchanged.
    """
    rows = np.arange(len(scores))
    found = np.empty((len(scores), k), dtype=np.int64)
    taken = np.empty((len(scores), k), dtype=scores.dtype)
    for j in range(k):
        found[:, j] = scores.argmin(axis=1)
        taken[:, j] = scores[rows, found[:, j]]
        scores[rows, found[:, j]] = np.inf
    for j in range(k):
        scores[rows, found[:, j]] = taken[:, j]
    return found


def _rerank_exactly(
    data: np.ndarray, subsets: list[np.ndarray], candidates: list[np.ndarray]
) -> list[NeighbourDistances]:
    """r1, r2 of each subset from exact distances to its candidates.

    Subsets share most candidate pairs (and a pair (i, j) is often also proposed as (j, i)),
    so each unordered pair is measured once: about half the work of measuring per subset.
    """
    n = len(data)
    proposed = [found[rows] for rows, found in zip(subsets, candidates)]
    first = np.concatenate([np.repeat(rows, found.shape[1]) for rows, found in zip(subsets, proposed)])
    second = np.concatenate([found.ravel() for found in proposed])
    pairs, which = np.unique(np.minimum(first, second) * n + np.maximum(first, second), return_inverse=True)
    squared = _exact_squared_distances(data, pairs // n, pairs % n)[which]

    results, offset = [], 0
    for rows, found in zip(subsets, proposed):
        block = squared[offset : offset + found.size].reshape(found.shape)
        offset += found.size
        nearest = np.sqrt(np.sort(block, axis=1)[:, :2])
        results.append(NeighbourDistances(rows=rows, r1=nearest[:, 0], r2=nearest[:, 1]))
    return results


def _exact_squared_distances(data: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """||data[left] - data[right]||^2 summed from coordinate differences.

    Squared differences are all positive, so their sum has no cancellation even in float32.
    """
    chunk = int(max(1, DEFAULT_BLOCK_BYTES // (2 * data.itemsize * data.shape[1])))
    squared = np.empty(len(left), dtype=np.float64)
    for start in range(0, len(left), chunk):
        diff = data[right[start : start + chunk]]
        diff -= data[left[start : start + chunk]]
        squared[start : start + chunk] = np.einsum("ij,ij->i", diff, diff)
    return squared
