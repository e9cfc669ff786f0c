"""The hubchat server: supervisor (python -m hub), hub process and the hub<->worker link."""
