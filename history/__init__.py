"""Message history: what the hub published, kept for CHATHISTORY, search, read markers and the
channel state that survives a restart. `history.store` is the storage; nothing here knows IRC
permissions (the hub checks them before it asks)."""
