"""SQLite state store: the embedded default. One file, safe across threads and processes
(every write runs in a `BEGIN IMMEDIATE` transaction, so interventions are serialised).

Its parts, one module each: the file and connections (`connections`), tables and added
columns (`schema`), the audit chain (`audit_chain`), interventions, subject state and profiles
(`interventions`), Idempotency-Keys, leases and keys seen once (`coordination`), tokens and
admin sessions (`access`), approvals and run-time settings (`policy_state`), dispositions and
inline decisions (`verdicts`)."""

from __future__ import annotations

from fraudwatch.intervention.stores.repository import StateStore
from fraudwatch.intervention.stores.sqlite.access import SqliteAccess
from fraudwatch.intervention.stores.sqlite.audit_chain import SqliteAuditChain
from fraudwatch.intervention.stores.sqlite.coordination import SqliteCoordination
from fraudwatch.intervention.stores.sqlite.interventions import SqliteInterventions
from fraudwatch.intervention.stores.sqlite.policy_state import SqlitePolicyState
from fraudwatch.intervention.stores.sqlite.verdicts import SqliteVerdicts


class SqliteStore(
    SqliteAuditChain,
    SqliteInterventions,
    SqliteCoordination,
    SqliteAccess,
    SqlitePolicyState,
    SqliteVerdicts,
    StateStore,
):
    """`SqliteStore(path)`: opens (or creates) the file and brings its schema up to date."""
