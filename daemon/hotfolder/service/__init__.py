"""The service stage (see the package docstring for the flow)."""
