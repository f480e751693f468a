"""End-to-end tests: the five services as real processes."""
