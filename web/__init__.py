"""The HTTP listener: the web client's static files, IRC over WebSocket, /metrics and /healthz."""
