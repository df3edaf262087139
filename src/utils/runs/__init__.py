"""The runs module's parts beside `utils.management`: a new run's config and a run's outputs."""
