"""One ``APIRouter`` per resource of the request-api; ``request_api.app`` assembles them.

Each handler only reads its HTTP input and hands it to the service layer: the writes are in
``request_api.commands``, the reads in ``request_api.queries``.
"""
