"""A Kinto include for the benchmark stack only (testing/bench.py): seeding without quadratic time.

Kinto 14's memory permission backend answers "every permission of this object" (asked on each
record write, to build the response) by scanning every permission entry it holds: seeding 50,000
records costs O(n^2), from about 500 records/s on an empty server down to under 100. This looks up
the permission names Kinto and kinto-signer use instead, which gives the same answer for them.
Explicit permission lists go to the original code unchanged. The tests' stack does not load it.
"""

from kinto.core.decorators import synchronized
from kinto.core.permission import memory

# Every permission name an object can hold here (buckets, groups, collections, records).
KNOWN_PERMISSIONS = (
    "read",
    "write",
    "bucket:create",
    "collection:create",
    "group:create",
    "record:create",
)

_original = memory.Permission.get_objects_permissions


@synchronized
def _get_objects_permissions(self, objects_ids, permissions=None):
    if permissions is not None:
        return _original.__wrapped__(self, objects_ids, permissions)
    result = []
    for object_id in objects_ids:
        perms = {}
        for name in KNOWN_PERMISSIONS:
            key = f"permission:{object_id}:{name}"
            if key in self._store:
                perms[name] = set(self._store[key])
        result.append(perms)
    return result


def includeme(config):
    memory.Permission.get_objects_permissions = _get_objects_permissions
