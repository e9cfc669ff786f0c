"""How hubchat's processes talk: the hub<->worker link, the supervisor's control channel, and
the loop every child process runs around it."""
