"""Who may call the node: apps, their secrets and grants."""

from tzsb.registry.apps import App, AppRegistry, AppSpec
from tzsb.registry.keys import MasterKey

__all__ = ["App", "AppRegistry", "AppSpec", "MasterKey"]
