"""Registered experiments. Importing this package registers all of them."""

from chanlab.experiments import channel_demo  # noqa: F401
