"""The server: the resource and its connections, URLs, session settings, grants, catalog reads and
errors explained in one sentence."""
