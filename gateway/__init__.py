"""The FastAPI gateway: one public entry point in front of the Django services."""
