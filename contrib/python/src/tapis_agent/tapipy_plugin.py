"""A tapipy plugin that makes any Tapis object agent-backed::

    from tapipy.tapis import Tapis
    t = Tapis(base_url="https://designsafe.tapis.io", plugins=["tapis_agent.tapipy_plugin"])

Every call of t then carries the agent's current token for the agent's
tenant with that base URL (tapis_agent_tenant="NAME", a keyword argument
of Tapis, names another), and upload() refreshes through the agent.
"""


from typing import Any


def on_tapis_client_instantiation(client: Any, **kwargs: Any) -> None:
    """Called by tapipy once for each new Tapis object that names this
    plugin, with the constructor's arguments."""
    from ._tapipy import plugin_install

    plugin_install(client, kwargs)
