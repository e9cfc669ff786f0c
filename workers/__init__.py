"""Worker processes: accept clients, run their IRC sessions on one event loop, relay through the hub."""
