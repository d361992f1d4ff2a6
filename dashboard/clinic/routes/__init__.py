"""The hub's API routes by area, each module a ``routes(hub, ...) -> APIRouter``; the
application (:func:`dashboard.clinic.app.create_hub_app`) only assembles them."""
