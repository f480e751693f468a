"""The web console: forms, session and templates of ``request_api.routers.console``."""
