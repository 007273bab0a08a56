"""The HTTP layer: the ARM and classic Service Management forms over Starlette."""
