"""Why a row ranks high: the features that deviate most from the training sample, in words."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TOP_REASONS = 3
NOTABLE = 1.5  # a feature is a reason only beyond this many spreads from the training median


def explain(z: np.ndarray, raw: np.ndarray, names: list[str]) -> tuple[pa.Array, pa.Array]:
    """(top_features: list<string>, reasons: string) per row, vectorised with Arrow."""
    n = len(z)
    k = min(TOP_REASONS, z.shape[1])
    order = np.argsort(-np.abs(z), axis=1, kind="stable")[:, :k]
    rows = np.arange(n)[:, None]
    zval = z[rows, order]
    val = raw[rows, order]
    notable = np.abs(zval) >= NOTABLE
    name_array = pa.array(names, pa.string())
    texts = []
    for j in range(k):
        name = pc.take(name_array, pa.array(order[:, j]))
        value = pa.array(np.round(val[:, j], 2)).cast(pa.string())
        sign = pa.array(np.where(zval[:, j] >= 0, "+", "-"))
        spread = pa.array(np.round(np.abs(zval[:, j]), 1)).cast(pa.string())
        lead = "; " if j else ""
        text = pc.binary_join_element_wise(lead, name, "=", value, " (", sign, spread, "σ)", "")
        # |z| is sorted descending, so the notable reasons of a row are always a prefix.
        texts.append(pc.if_else(pa.array(notable[:, j]), text, ""))
    joined = pc.binary_join_element_wise(*texts, "")
    reasons = pc.if_else(pa.array(notable[:, 0]), joined, pa.nulls(n, pa.string()))
    flat = pc.take(name_array, pa.array(order[notable]))
    offsets = np.concatenate([[0], np.cumsum(notable.sum(axis=1))]).astype(np.int32)
    top = pa.ListArray.from_arrays(pa.array(offsets), flat)
    return top, reasons
