"""Feature extraction: a chosen layer, streamed in batches, cached on disk by content hash."""

from ._extract import FeatureResult, cache_directory, extract_features, feature_cache_key

__all__ = ["FeatureResult", "cache_directory", "extract_features", "feature_cache_key"]
