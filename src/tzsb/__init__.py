"""tzsb-exchange: a data exchange node for special-equipment safety regulators.

Implements 《特种设备安全监管信息共享接口规范（试行 V1.1）》.
"""

__version__ = "0.1.0"
