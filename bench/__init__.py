"""`make bench`: side-by-side performance ratios of the API key service (see docs/performance.md)."""
