"""Layers the registered networks (``segsr/archs``) are built from; none is a network a user builds alone."""
