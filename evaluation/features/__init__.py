"""Feature extractors used by metrics that need a network (FID's Inception-v3); torch is imported lazily."""
