"""The intake stage (see the package docstring for the flow)."""
