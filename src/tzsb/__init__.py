"""tzsb-exchange: a data exchange node for special-equipment safety regulators.

Implements 《特种设备安全监管信息共享接口规范（试行 V1.1）》.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    # One source for the version: pyproject.toml, as installed.
    __version__ = version("tzsb-exchange")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0+unknown"
