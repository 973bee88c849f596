"""The `interp` command line: thin typer wrappers over library functions."""
