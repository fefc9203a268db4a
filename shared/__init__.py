"""The core of rapid-meetings: importable without azure.functions, no I/O at import."""
