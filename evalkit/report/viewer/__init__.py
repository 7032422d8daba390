"""The results viewer: a static HTML site over run folders (``evalkit view``)."""
