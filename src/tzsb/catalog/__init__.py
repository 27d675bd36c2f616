"""Data elements per business type (table 7): shipped as data files, loaded into ``Catalog``."""

from tzsb.catalog.loader import load_catalog
from tzsb.catalog.model import BusinessType, Catalog, FieldSpec, FieldType

__all__ = ["BusinessType", "Catalog", "FieldSpec", "FieldType", "load_catalog"]
