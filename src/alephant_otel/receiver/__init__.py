"""Transports (gRPC today) and the one ingest pipeline they share."""
