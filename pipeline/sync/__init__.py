"""`flask sync`: the installation's data versioned with DVC and kept in step with other
machines through a shared remote (cycle.py; dvc.py runs DVC)."""
