"""Small shared utilities: atomic writes, run provenance, progress bars."""
