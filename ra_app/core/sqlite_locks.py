"""Locking reads on the embedded SQLite file keep Postgres's promise.

On Postgres a row read `FOR UPDATE` stays locked until the transaction ends, and every
"twice at once" guard (a task's submit, a sample's windows, a stage's claim) rests on that.
SQLite has no row locks and drops the clause, and Python's driver begins a transaction only
at the first write: two requests would both read a task as open and both submit it. So a
locking read on SQLite begins its transaction with BEGIN IMMEDIATE, which takes the
database's write lock at once; the other request waits (the connect timeout) and then reads
what the first one committed. Coarser than a row lock, which the embedded mode's handful of
users never notice.
"""

from __future__ import annotations

import sqlalchemy as sa


@sa.event.listens_for(sa.engine.Engine, "before_execute")
def write_lock_for_locking_reads(conn, clauseelement, multiparams, params, execution_options):
    if conn.dialect.name != "sqlite" or getattr(clauseelement, "_for_update_arg", None) is None:
        return
    driver = conn.connection.dbapi_connection
    if not driver.in_transaction:  # within one, a write has already taken the lock
        driver.execute("BEGIN IMMEDIATE")
