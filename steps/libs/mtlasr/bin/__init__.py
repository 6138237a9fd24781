"""Command-line entry points, each run as ``python3 -m mtlasr.bin.<name>``."""
