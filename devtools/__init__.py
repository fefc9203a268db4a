"""Local run, simulators, benchmarks: everything that is not deployed (see .funcignore)."""
