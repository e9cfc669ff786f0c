"""The global chat state (users, nicks, channels) and the events that change it: decided by the
hub, applied in the hub's order by the hub and by every worker's replica."""
