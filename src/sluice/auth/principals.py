"""Principals (a token or a user) and the roles of SPEC §7."""

from __future__ import annotations

from dataclasses import dataclass

from sluice.errors import Forbidden, ValidationFailed

ROLES = ("viewer", "editor", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}


def check_role(role: str, field: str = "role") -> str:
    if role not in _RANK:
        raise ValidationFailed.field(field, f"must be one of {', '.join(ROLES)}")
    return role


def check_profile_refs(refs: list[str] | None, field: str = "profiles") -> list[str] | None:
    if refs is None:
        return None
    for ref in refs:
        account, sep, profile = ref.partition("/")
        if not sep or not account or not profile or "/" in profile:
            raise ValidationFailed.field(field, f"{ref!r} is not ACCOUNT/PROFILE")
    return refs


@dataclass(frozen=True)
class Principal:
    kind: str  # "token" | "user"
    id: str
    name: str  # what the audit log and version history show
    role: str
    profiles: frozenset[str] | None  # "account/profile"; None means every profile

    def has_role(self, needed: str) -> bool:
        return _RANK[self.role] >= _RANK[needed]

    def require(self, needed: str) -> None:
        if not self.has_role(needed):
            raise Forbidden(f"this needs the {needed} role; you have {self.role}")

    def may_see(self, account: str, profile: str) -> bool:
        return self.profiles is None or f"{account}/{profile}" in self.profiles

    def require_profile(self, account: str, profile: str, needed: str = "viewer") -> None:
        if not self.may_see(account, profile):
            raise Forbidden(f"you have no access to the profile {account}/{profile}")
        self.require(needed)


SYSTEM = Principal("system", "system", "system", "admin", None)
