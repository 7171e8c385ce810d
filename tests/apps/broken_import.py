"""An application module that fails while being imported, to test how the arbiter stops."""

raise RuntimeError("apps.broken_import fails at import on purpose")
