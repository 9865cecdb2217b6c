"""The assemble stage (see the package docstring for the flow)."""
