"""Import and export of the register (CSV, JSON, JSON Lines): the services behind
`tikting register export|import` and the API's /items/export and /items/import.

Formats, columns and matching rules are documented in docs/import-formats.md; keep them in step.

Export streams (`QuerySet.iterator()`), one row per item. Import streams too (csv.DictReader over
the file; JSON Lines line by line; a JSON array object by object), validates every row with cheap
explicit checks instead of `full_clean()` (measured: it dominated the import time), and writes in
chunks: lookups (services, users, existing refs and external ids) are loaded once, new items are
`bulk_create`d with their audit rows and status-change rows, and only rows that differ from the
database are updated. A chunk is written in one transaction; if it fails as a whole (an integrity
error the checks did not foresee) it is replayed row by row, each row in its own savepoint, so
good rows are always kept.

Modules: `columns` (the columns and value formats both directions share), `export`, and for
import `parse` (reading rows and cell values), `plan` (one row checked and matched) and
`importer` (the run: chunks, bulk writes, parents).
"""

from tikting.lib.tabular import FORMATS, format_for

from .columns import EXPORT_FIELDS
from .export import export_items, item_record
from .importer import import_items
from .parse import ImportResult, RowError

__all__ = [
    "EXPORT_FIELDS",
    "FORMATS",
    "ImportResult",
    "RowError",
    "export_items",
    "format_for",
    "import_items",
    "item_record",
]
