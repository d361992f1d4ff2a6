"""MQTT: the wire protocol (pure), the station's bridge, Home Assistant discovery."""
