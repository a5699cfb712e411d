"""The floor everything stands on: settings, the event contract, the alert record."""
