"""One chunk's work: read, transform and write in Python, or push it down into SQL."""
