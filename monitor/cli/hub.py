"""``spotter hub``: the clinic's central station, and the people who may log in to it."""

from __future__ import annotations

import getpass
import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from monitor.cli.common import fail

if TYPE_CHECKING:
    from dashboard.clinic.settings import HubSettings
    from dashboard.clinic.store import HubStore

hub_app = typer.Typer(
    help="The clinic hub: every station over MQTT on one central page.",
    invoke_without_command=True,
)
person_app = typer.Typer(help="People who may log in to the hub.", no_args_is_help=True)
hub_app.add_typer(person_app, name="person")

ConfigOption = Annotated[str | None, typer.Option("--config", help="The hub's TOML file.")]


@hub_app.callback()
def hub_run(
    ctx: typer.Context,
    config: ConfigOption = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="The page's port.")] = None,
) -> None:
    """Run the hub (when no sub-command is given): MQTT in, the central page out."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = config
        return
    import asyncio
    import logging

    from dashboard.clinic.settings import HubConfigError, load_hub_settings
    from monitor.store.database import StoreError

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_hub_settings(config)
        store = settings.open_store()
    except (HubConfigError, StoreError) as exc:
        raise fail("hub", str(exc)) from None
    if port is not None:
        settings.hub.port = port

    try:
        asyncio.run(_serve(settings, store))
    finally:
        store.close()


async def _serve(settings: HubSettings, store: HubStore) -> None:
    """The hub and its page until SIGINT/SIGTERM."""
    import asyncio

    import uvicorn

    from dashboard.clinic.app import create_hub_app
    from dashboard.clinic.service import Hub
    from dashboard.server import _QuietServer
    from monitor.station.assembly import stop_on_signals

    stop = asyncio.Event()
    stop_on_signals(stop)
    hub = Hub(settings, store)
    server = _QuietServer(
        uvicorn.Config(
            create_hub_app(hub),
            host=settings.hub.host,
            port=settings.hub.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    serving = asyncio.create_task(server.serve())
    running = asyncio.create_task(hub.run(stop))
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.02)
    if server.started:
        bound = server.servers[0].sockets[0].getsockname()[1]
        print(f"Hub page: http://{settings.hub.host}:{bound}/", file=sys.stderr, flush=True)
    await stop.wait()
    server.should_exit = True
    await running
    try:
        await serving
    except SystemExit:
        raise fail("hub", f"cannot listen on {settings.hub.host}:{settings.hub.port}") from None


@person_app.command("add")
def person_add(
    ctx: typer.Context,
    name: str,
    role: Annotated[str, typer.Option(help="viewer, therapist or admin.")] = "therapist",
    push_url: Annotated[
        str | None, typer.Option(help="apprise URL for escalations (kept secret).")
    ] = None,
    rank: Annotated[
        int | None, typer.Option(min=1, help="Place on the escalation list (1: first).")
    ] = None,
) -> None:
    """Add a person; the password comes from $SPOTTER_HUB_PASSWORD or a prompt."""
    from dashboard.clinic.app import hash_password
    from dashboard.clinic.settings import HubConfigError, load_hub_settings
    from monitor.store.database import StoreError

    password = os.environ.get("SPOTTER_HUB_PASSWORD") or getpass.getpass(f"password for {name}: ")
    try:
        settings = load_hub_settings(ctx.obj)
        store = settings.open_store()
    except (HubConfigError, StoreError) as exc:
        raise fail("hub person add", str(exc)) from None
    try:
        store.add_person(name, role, hash_password(password), push_url, rank)
        store.audit("cli", "person added", {"name": name, "role": role})
    except (StoreError, ValueError) as exc:
        raise fail("hub person add", str(exc)) from None
    finally:
        store.close()
    print(f"added {name} ({role})")


@person_app.command("list")
def person_list(ctx: typer.Context) -> None:
    """Everyone who may log in."""
    from rich.console import Console
    from rich.table import Table

    from dashboard.clinic.settings import HubConfigError, load_hub_settings
    from monitor.store.database import StoreError

    try:
        settings = load_hub_settings(ctx.obj)
        store = settings.open_store()
    except (HubConfigError, StoreError) as exc:
        raise fail("hub person list", str(exc)) from None
    table = Table("name", "role", "push", "escalation rank")
    for p in store.people():
        table.add_row(
            p["name"], p["role"], "yes" if p["has_push"] else "", str(p["escalation_rank"] or "")
        )
    store.close()
    Console().print(table)
