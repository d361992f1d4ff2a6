"""Simulated sensors for Spotter: scenarios, traces and (later) peripherals on a virtual radio.

Everything here speaks bytes through ``monitor.core.codecs``: one truth for the protocols.
"""
