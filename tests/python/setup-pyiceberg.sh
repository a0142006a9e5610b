#!/usr/bin/env bash
# Makes the virtual environment the lake tests read Iceberg tables with: pyiceberg (with
# its SQL catalog on sqlite) and pyarrow, pinned. Usage: setup-pyiceberg.sh VENV_DIR
set -euo pipefail
venv="${1:?usage: setup-pyiceberg.sh VENV_DIR}"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  'pyiceberg[sql-sqlite]==0.12.0' 'pyarrow>=17,<27'
"$venv/bin/python" -c 'import pyiceberg.catalog.sql, pyarrow'
