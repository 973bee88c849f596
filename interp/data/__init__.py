"""Task loaders, the bundled toy world and the bundled toy model."""
