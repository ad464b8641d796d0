"""Weight clustering (tfmot): every selected layer's kernel shares `k` trained values.

kmeans++ initialisation is used because it places centroids where the weights are dense
and spread, which loses less accuracy before fine-tuning than linear or random starts.
Clustering is per tensor: after stripping, a layer has at most k distinct kernel values.
"""

from __future__ import annotations

from typing import Any

from edgecompress._tf import tfmot
from edgecompress.compression.graph import rebuild, selected


def _tfmot() -> Any:
    return tfmot()


def cluster_layers(model: Any, clusters: dict[str, int]) -> Any:
    """Wrap the layers named in `clusters` (name -> number of clusters) for clustered training."""
    api = _tfmot().clustering.keras
    init = api.CentroidInitialization.KMEANS_PLUS_PLUS

    def wrap(layer: Any) -> Any:
        return api.cluster_weights(layer, number_of_clusters=int(clusters[layer.name]), cluster_centroids_init=init)

    return rebuild(model, selected(clusters, wrap))


def strip_clustering(model: Any) -> Any:
    """Replace clustering wrappers by plain layers whose kernels hold the clustered values."""
    return _tfmot().clustering.keras.strip_clustering(model)
