"""Developer tools for tests, benchmarks and figures (browser screenshots, synthetic results); not part of the interp package."""
