"""The API's routers, one module per part of the API (results, actions, audit, policy,
tokens); the hooks (`alert_hooks.py`), dispositions, decisions and the admin page mount
their own. `api.create_app` mounts them all."""
