"""Interventions in MongoDB: the subjects' flags they set and the user profiles that carry an
account's flags. No multi-document transaction: an intervention holds a short per-subject
lease while it reads the flag, appends the audit entry and writes the new flag, so concurrent
lock/unlock on one account serialise."""

from __future__ import annotations

import contextlib
from typing import Any

from pymongo.errors import DuplicateKeyError

from fraudwatch.intervention.audit import now_iso
from fraudwatch.intervention.stores.mongodb.audit_chain import append_entry
from fraudwatch.intervention.stores.mongodb.coordination import acquire_lease, release_lease
from fraudwatch.intervention.stores.mongodb.database import MongoDatabase
from fraudwatch.intervention.stores.records import intervention_entry, profile_view
from fraudwatch.intervention.stores.repository import ACCOUNT_FLAGS, ACTION_EFFECTS, utc_iso


def _profile(doc: dict[str, Any]) -> dict[str, Any]:
    return profile_view(
        doc["user_id"],
        doc.get("persona"),
        doc.get("last_seen"),
        doc.get("state") or {},
        doc.get("updated_at"),
    )


class MongoInterventions(MongoDatabase):
    # --- interventions -----------------------------------------------------------------
    def apply_intervention(self, entry: dict[str, Any], subject_id: str) -> dict[str, Any]:
        kind, field, value = ACTION_EFFECTS[entry["action"]]
        lease_id = f"{kind}:{subject_id}"
        owner = acquire_lease(self.db, lease_id)
        try:
            doc = self.db.state.find_one({"_id": f"{kind}:{subject_id}:{field}"})
            current = bool(doc["value"]) if doc else False
            sealed = append_entry(
                self.db, intervention_entry(entry, kind, subject_id, current, value)
            )
            self.db.state.update_one(
                {"_id": f"{kind}:{subject_id}:{field}"},
                {
                    "$set": {
                        "kind": kind,
                        "subject_id": str(subject_id),
                        "field": field,
                        "value": value,
                        "seq": sealed["seq"],
                    }
                },
                upsert=True,
            )
            if kind == "account":
                self._ensure_profile(str(subject_id))
                self.db.profiles.update_one(
                    {"_id": str(subject_id)},
                    {"$set": {f"state.{field}": value, "updated_at": now_iso()}},
                )
            return sealed
        finally:
            release_lease(self.db, lease_id, owner)

    def get_state(self, kind: str, subject_id: str) -> dict[str, bool]:
        docs = self.db.state.find({"kind": kind, "subject_id": str(subject_id)})
        return {doc["field"]: bool(doc["value"]) for doc in docs}

    def states_of(self, kind: str, subject_ids: list[str]) -> dict[str, dict[str, bool]]:
        found: dict[str, dict[str, bool]] = {str(i): {} for i in subject_ids}
        if found:
            docs = self.db.state.find({"kind": kind, "subject_id": {"$in": list(found)}})
            for doc in docs:
                found[doc["subject_id"]][doc["field"]] = bool(doc["value"])
        return found

    def state_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "kind": doc.get("kind"),
                "subject_id": doc.get("subject_id"),
                "field": doc.get("field"),
                "value": bool(doc.get("value")),
                "seq": doc.get("seq"),
            }
            for doc in self.db.state.find({})
        ]

    def subjects_with(self, kind: str, field: str) -> list[str]:
        docs = self.db.state.find({"kind": kind, "field": field, "value": True})
        return [doc["subject_id"] for doc in docs]

    # --- user profiles -----------------------------------------------------------------
    def _ensure_profile(self, user_id: str) -> None:
        """Create the profile with the account's current state unless it exists."""
        state = self.get_state("account", user_id)
        with contextlib.suppress(DuplicateKeyError):
            self.db.profiles.insert_one(
                {
                    "_id": user_id,
                    "user_id": user_id,
                    "persona": None,
                    "last_seen": None,
                    "state": {flag: state.get(flag, False) for flag in ACCOUNT_FLAGS},
                    "updated_at": now_iso(),
                }
            )

    def touch_profile(
        self, user_id: str, *, persona: str | None = None, last_seen: str | None = None
    ) -> dict[str, Any]:
        user_id = str(user_id)
        last_seen = utc_iso(last_seen)
        self._ensure_profile(user_id)
        changes: dict[str, Any] = {"updated_at": now_iso()}
        if persona is not None:
            changes["persona"] = persona
        self.db.profiles.update_one({"_id": user_id}, {"$set": changes})
        if last_seen is not None:
            # Only ever forward: the filter makes the update conditional (no $max needed).
            self.db.profiles.update_one(
                {
                    "_id": user_id,
                    "$or": [{"last_seen": None}, {"last_seen": {"$lt": last_seen}}],
                },
                {"$set": {"last_seen": last_seen}},
            )
        profile = self.get_profile(user_id)
        assert profile is not None
        return profile

    def get_profile(self, user_id: str) -> dict[str, Any] | None:
        doc = self.db.profiles.find_one({"_id": str(user_id)})
        return _profile(doc) if doc else None
