"""Spotter's dashboard: the FastAPI app served by ``spotter run``, its live stream, and the
phone-first web front end (sources in ``dashboard/web``, built into ``dashboard/static``)."""
