"""Performance benchmarks of tad (issue 5): extraction, the non-flow grid and flow trials. See README.md."""
