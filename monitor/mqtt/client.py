"""An aiomqtt client from the ``[mqtt]`` settings: one place for host, port, login and timing,
shared by the station's bridge and the clinic hub."""

from __future__ import annotations

import logging
import ssl
from typing import Any

import aiomqtt

from monitor.settings import MqttConfig


def client_for(
    config: MqttConfig,
    *,
    username: str,
    identifier: str,
    clean_session: bool,
    tls_context: ssl.SSLContext | None,
    logger: logging.Logger,
    will: aiomqtt.Will | None = None,
    max_queued_incoming_messages: int | None = None,
    v5_session_expiry_s: int | None = None,
) -> aiomqtt.Client:
    """A client for ``config``'s broker; ``username`` is used when the settings name none.

    With ``v5_session_expiry_s`` the client speaks MQTT v5 (shared subscriptions) and keeps a
    session that long unless ``clean_session``: the same persistent session in v5's words."""
    session: dict[str, Any] = {"clean_session": clean_session}
    if v5_session_expiry_s is not None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        expiry = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        expiry.SessionExpiryInterval = v5_session_expiry_s
        session = {
            "protocol": aiomqtt.ProtocolVersion.V5,
            "clean_start": clean_session,
            "properties": expiry,
        }
    return aiomqtt.Client(
        config.host,
        config.broker_port,
        username=config.username or username,
        password=None if config.password is None else config.password.get_secret_value(),
        identifier=identifier,
        will=will,
        keepalive=config.keepalive_s,
        timeout=config.timeout_s,
        tls_context=tls_context,
        max_queued_incoming_messages=max_queued_incoming_messages,
        logger=logger,
        **session,
    )
