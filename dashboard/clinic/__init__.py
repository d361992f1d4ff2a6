"""The clinic hub: its pure core, store, service (MQTT in), web app and page."""
