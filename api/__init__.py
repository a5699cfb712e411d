"""FastAPI service: REST, health, and WebSocket fan-out of the alerts topic."""
