"""The station: the live loop, its assembly (daemon, simulation), journal, recorder, service."""
