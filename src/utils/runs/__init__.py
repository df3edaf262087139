"""The runs module's parts beside `utils.management`: the `Run`, a new run's config, its outputs."""
