"""MongoDB state store (the cluster setup). Works on MongoDB and on FerretDB.

No multi-document transactions are needed: the audit chain is ordered by a unique `_id = seq`
(two writers racing for the same seq: one gets a duplicate-key error and retries), and each
intervention holds a short per-subject lease document while it reads state, appends the
audit entry and writes the new state, so concurrent lock/unlock on one account serialise.

Its parts, one module each: client, database and indexes (`database`), the audit chain
(`audit_chain`), interventions, subject state and profiles (`interventions`), leases,
Idempotency-Keys and keys seen once (`coordination`), tokens and admin sessions (`access`),
approvals and run-time settings (`policy_state`), dispositions and inline decisions
(`verdicts`).
"""

from __future__ import annotations

from fraudwatch.intervention.stores.mongodb.access import MongoAccess
from fraudwatch.intervention.stores.mongodb.audit_chain import MongoAuditChain
from fraudwatch.intervention.stores.mongodb.coordination import MongoCoordination
from fraudwatch.intervention.stores.mongodb.interventions import MongoInterventions
from fraudwatch.intervention.stores.mongodb.policy_state import MongoPolicyState
from fraudwatch.intervention.stores.mongodb.verdicts import MongoVerdicts
from fraudwatch.intervention.stores.repository import StateStore


class MongoStore(
    MongoAuditChain,
    MongoInterventions,
    MongoCoordination,
    MongoAccess,
    MongoPolicyState,
    MongoVerdicts,
    StateStore,
):
    """`MongoStore(url, database=None)`: the URL's database (default `fraudwatch`) unless
    `database` names another; the indexes are created on opening."""
