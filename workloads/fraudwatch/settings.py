"""Kept while models/registry.py still imports `home` from here: fraudwatch's home folder is
resolved in locations/home.py."""

from __future__ import annotations

from fraudwatch.locations.home import fraudwatch_home as home

__all__ = ["home"]
