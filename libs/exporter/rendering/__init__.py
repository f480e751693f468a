"""Rendering rules: from stored measurements to the rows and bytes of an export file."""
