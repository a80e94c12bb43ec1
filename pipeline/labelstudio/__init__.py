"""Moving work between Label Studio and the product: `flask import labelstudio` reads its
exports (exports.py, importer.py), `flask export labelstudio` writes its import format
(exporter.py)."""
