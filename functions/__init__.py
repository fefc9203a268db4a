"""Thin trigger adapters: parse → call the core in shared/ → answer."""
