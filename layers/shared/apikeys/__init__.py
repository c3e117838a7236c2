"""Shared domain code for the API key service, shipped to every function as one Lambda layer."""
