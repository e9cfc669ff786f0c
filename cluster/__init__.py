"""Several hosts as one network, through Redis: the shared log (a stream), leases, snapshots."""
