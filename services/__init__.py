"""The jobs, Prefect-free: each takes a connection or engine and clients built by the caller."""
