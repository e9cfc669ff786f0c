"""hubchat's own clients: `python -m client` in a terminal, `python -m client --gui` in a window."""
