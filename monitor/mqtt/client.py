"""An aiomqtt client from the ``[mqtt]`` settings: one place for host, port, login and timing,
shared by the station's bridge and the clinic hub."""

from __future__ import annotations

import logging
import ssl

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
) -> aiomqtt.Client:
    """A client for ``config``'s broker; ``username`` is used when the settings name none."""
    return aiomqtt.Client(
        config.host,
        config.broker_port,
        username=config.username or username,
        password=None if config.password is None else config.password.get_secret_value(),
        identifier=identifier,
        will=will,
        clean_session=clean_session,
        keepalive=config.keepalive_s,
        timeout=config.timeout_s,
        tls_context=tls_context,
        max_queued_incoming_messages=max_queued_incoming_messages,
        logger=logger,
    )
