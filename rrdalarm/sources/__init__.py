"""Where points come from: one module per kind of source, discovered by entry points."""
