"""Trips: the lease, the chunk loop, when to stop, and chunk sizing."""
