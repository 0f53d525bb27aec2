"""What each role may do.

owner ⊃ admin ⊃ developer ⊃ viewer. Viewers read; developers build agents,
tools and flows; admins also manage numbers, carriers, keys and campaigns;
owners also manage owners.
"""

from __future__ import annotations

from switchboard.db.models import Role

RANK = {Role.VIEWER: 0, Role.DEVELOPER: 1, Role.ADMIN: 2, Role.OWNER: 3}


def role_at_least(role: Role, required: Role) -> bool:
    return RANK[role] >= RANK[required]
