"""What a caller of the intervention service sees of personal data (issue 20, item 2).

One place: every JSON response of the API passes through :class:`MaskedRoute` (the app's
route class), and the admin page's values through :meth:`Masker.for_principal` before they
are rendered. A caller whose role may act on accounts (FULL_VALUES_PERMISSION: analyst,
admin) sees every value; any other caller (viewer, automation, an unauthenticated answer)
gets the fields that fraudwatch.contract.personal_data marks masked: IP addresses as their
network prefix, device ids and counterparties as keyed-hash pseudonyms under
`privacy.pseudonym_key` (redacted when no key is configured).

Each view of one customer's details is audited with :func:`record_view` (action `view`,
result `shown`, subject kind `account_view`). List pages are not audited row by row
(docs/privacy.md says why).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from fraudwatch.contract.personal_data import mask_value, masked_fields
from fraudwatch.intervention.audit import new_entry
from fraudwatch.intervention.auth import Principal
from fraudwatch.intervention.stores import StateStore

log = logging.getLogger("fraudwatch.intervention")

#: Who sees personal data in full: the roles that may act on an account need the device and
#: network to judge it (docs/intervention.md, permission matrix).
FULL_VALUES_PERMISSION = "interventions:write"
#: The audit subject kind of a view of one customer's details (kept apart from `account`, so
#: views neither fill an account's intervention history nor hide a human intervention from
#: the automated responder, which reads the newest entries of `account`).
VIEW_SUBJECT_KIND = "account_view"
VIEW_ACTION = "view"
VIEW_RESULT = "shown"

_MASKED = frozenset(masked_fields())
_MASKED_KEYS = tuple(f'"{name}"'.encode() for name in sorted(_MASKED))


class Masker:
    """Masks rows for a principal with the deployment's pseudonym key."""

    def __init__(self, pseudonym_key: str) -> None:
        self._key = pseudonym_key.encode() if pseudonym_key else None

    @classmethod
    def from_settings(cls, settings: Any) -> Masker:
        """The masker of a service; warns (once per start) when no pseudonym key is set."""
        key = str(getattr(settings, "pseudonym_key", "") or "")
        if not key:
            log.warning(
                "privacy.pseudonym_key is not set (FRAUDWATCH_PSEUDONYM_KEY): viewers get "
                "device ids and counterparties fully redacted instead of pseudonyms; "
                "see docs/privacy.md"
            )
        return cls(key)

    @property
    def has_key(self) -> bool:
        return self._key is not None

    @staticmethod
    def sees_full_values(principal: Principal | None) -> bool:
        return principal is not None and principal.may(FULL_VALUES_PERMISSION)

    def for_principal(self, principal: Principal | None, data: Any) -> Any:
        """`data` as `principal` may see it: unchanged for analysts and admins, else a copy
        with every masked field (at any depth of dicts and lists) masked."""
        if self.sees_full_values(principal):
            return data
        return self._mask(data)

    def _mask(self, data: Any, field: str | None = None) -> Any:
        if isinstance(data, dict):
            return {k: self._mask(v, k if k in _MASKED else None) for k, v in data.items()}
        if isinstance(data, list):
            return [self._mask(v, field) for v in data]
        if field is not None:
            return mask_value(field, data, self._key)
        return data

    def mask_response(self, response: Response, principal: Principal | None) -> Response:
        """The response with its JSON body masked for `principal` (other bodies as they are)."""
        if self.sees_full_values(principal):
            return response
        if not response.headers.get("content-type", "").startswith("application/json"):
            return response
        body = getattr(response, "body", b"")
        if not body or not any(key in body for key in _MASKED_KEYS):
            return response
        masked = self._mask(json.loads(body))
        response.body = json.dumps(
            masked, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")
        response.headers["content-length"] = str(len(response.body))
        return response


class MaskedRoute(APIRoute):
    """The app's route class: the response of every API route is masked for its caller (the
    principal the permission check put on `request.state`; none: masked)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def masked(request: Request) -> Response:
            response = await handler(request)
            masker = getattr(request.app.state, "masker", None)
            if masker is None:
                return response
            principal = getattr(request.state, "principal", None)
            result: Response = masker.mask_response(response, principal)
            return result

        return masked


def record_view(
    store: StateStore, principal: Principal, user_id: int | str, what: str, via: str = "api"
) -> None:
    """Audit one view of a customer's details: who (`actor`, `role`) looked at whom
    (`subject_id` = the user id), when (`ts`) and at what (`detail`)."""
    store.append_audit(
        new_entry(
            actor=principal.actor,
            role=principal.role,
            via=via,
            action=VIEW_ACTION,
            subject_kind=VIEW_SUBJECT_KIND,
            subject_id=str(user_id),
            result=VIEW_RESULT,
            detail=what,
        )
    )
