"""Data elements per business type (table 7): shipped as data files, loaded into ``Catalog``;
the code tables rules check against; the catalog's documentation pages.

Other packages import from here only; the modules behind these names are private.
"""

from tzsb.catalog import samples
from tzsb.catalog.code_tables import CatalogueEntry, division_name, equipment_catalogue
from tzsb.catalog.doc_pages import pages as catalog_pages
from tzsb.catalog.loader import load_catalog, parse_business_type
from tzsb.catalog.model import MASKS, BusinessType, Catalog, FieldSpec, FieldType, default_mask

__all__ = [
    "MASKS",
    "BusinessType",
    "Catalog",
    "CatalogueEntry",
    "FieldSpec",
    "FieldType",
    "catalog_pages",
    "default_mask",
    "division_name",
    "equipment_catalogue",
    "load_catalog",
    "parse_business_type",
    "samples",
]
