"""The config stage (see the package docstring for the flow)."""
