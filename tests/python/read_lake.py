"""Reads a ufer lake table with pyiceberg, as any Python user of the lake would.

Usage: read_lake.py CATALOG_URI WAREHOUSE CATALOG_NAME DATABASE.TABLE OUT

Writes OUT.arrow (every row, as pyiceberg returns them, in an Arrow IPC file) and OUT.json
(the Iceberg schema, one "name: required|optional type" line per column, the format
version, and the current snapshot's summary properties).
"""

import json
import sys

import pyarrow.ipc as ipc
from pyiceberg.catalog.sql import SqlCatalog


def main() -> None:
    uri, warehouse, name, ident, out = sys.argv[1:6]
    catalog = SqlCatalog(name, uri=uri, warehouse=warehouse)
    table = catalog.load_table(ident)
    rows = table.scan().to_arrow()
    with open(out + ".arrow", "wb") as sink:
        with ipc.new_file(sink, rows.schema) as writer:
            writer.write_table(rows)
    schema = [
        f"{field.name}: {'required' if field.required else 'optional'} {field.field_type}"
        for field in table.schema().fields
    ]
    snapshot = table.current_snapshot()
    summary = dict(snapshot.summary.additional_properties) if snapshot else {}
    with open(out + ".json", "w") as sink:
        json.dump(
            {
                "schema": schema,
                "format_version": table.metadata.format_version,
                "summary": summary,
                "rows": rows.num_rows,
            },
            sink,
        )


if __name__ == "__main__":
    main()
