"""CLI command groups: each module has ``register(app)`` adding its thin commands to the Typer app."""
