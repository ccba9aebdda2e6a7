"""The source-change sensor: what a tick reads from the server and when it asks for a refresh."""
