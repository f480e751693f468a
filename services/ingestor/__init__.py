"""ingestor."""
