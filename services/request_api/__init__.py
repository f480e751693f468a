"""request_api."""
