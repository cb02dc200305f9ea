"""Who a request is sent as: a credential from the target fixtures, or a deliberately wrong one."""
from __future__ import annotations

from collections.abc import Collection

from conformance.setup.fixtures import Credential, TargetFixtures
from conformance.setup.references import MADE_UP_TOKEN_PREFIX

FIXTURE_IDENTITIES = ("valid", "without_scope", "network_restricted", "invalid_capabilities")


def random_token(run_id: str) -> str:
    """A token that cannot exist on any target, made up per run."""
    return f"{MADE_UP_TOKEN_PREFIX}{run_id}"


def identity_headers(identity: str, fixtures: TargetFixtures, run_id: str) -> dict[str, str]:
    """The headers that present `identity`: none, valid, non_bearer, random, or a credential key (MissingFixture if absent)."""
    if identity == "none":
        return {}
    if identity == "random":
        return dict(Credential.bearer("random", random_token(run_id)).headers)
    if identity == "non_bearer":
        token = fixtures.credential("valid").headers.get("Authorization", "").partition(" ")[2]
        return {"Authorization": f"Token {token}"}
    return dict(fixtures.credential(identity).headers)


def available_identities(fixtures: TargetFixtures, withheld: Collection[str] = ()) -> list[str]:
    """Every identity these fixtures can present, but those whose key (`credentials.<key>`) is withheld (the preflight doubts it)."""
    return ["valid", "none", "random", "non_bearer"] + [key for key in FIXTURE_IDENTITIES[1:]
                                                        if key in fixtures.credentials and f"credentials.{key}" not in withheld]
