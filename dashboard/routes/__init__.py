"""The dashboard's HTTP API, one APIRouter per area, assembled by
:func:`dashboard.app.create_app`; what they share is in :mod:`dashboard.routes.deps`."""
