"""Declared pipelines shipped with the package (the demo's), readable with importlib.resources."""
