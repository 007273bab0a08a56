"""The HTTP layer: ARM resources over Starlette."""
