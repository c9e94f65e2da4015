"""Kinto's in-memory permission backend with an index of its entries by object, for the test stack's
bulk server.

The stock memory backend finds one object's permissions by scanning every entry it holds, so each
record write costs time proportional to all the records of the server (PostgreSQL, in production,
answers the same question from an index). With thousands of records that scan is most of a
write's cost. This subclass keeps the same entries and answers, and finds an object's entries
through an index.

Enable with `kinto.permission_backend = kinto_indexed_permission` (this directory on PYTHONPATH).
"""

from kinto.core.decorators import synchronized
from kinto.core.permission import memory


class _IndexedStore(dict):
    """The backend's `permission:<object id>:<permission>` and `user:<id>` entries, with the keys
    of each object's permission entries."""

    def __init__(self):
        super().__init__()
        self.by_object = {}

    @staticmethod
    def _object_id(key):
        parts = key.split(":", 2)
        return parts[1] if parts[0] == "permission" and len(parts) == 3 else None

    def __setitem__(self, key, value):
        object_id = self._object_id(key)
        if object_id is not None:
            self.by_object.setdefault(object_id, set()).add(key)
        super().__setitem__(key, value)

    def __delitem__(self, key):
        super().__delitem__(key)
        object_id = self._object_id(key)
        if object_id is not None:
            keys = self.by_object.get(object_id, set())
            keys.discard(key)
            if not keys:
                self.by_object.pop(object_id, None)


class Permission(memory.Permission):
    def flush(self):
        self._store = _IndexedStore()

    @synchronized
    def get_objects_permissions(self, objects_ids, permissions=None):
        if permissions is not None:
            # Named permissions: the stock lookup reads those keys directly, no scan.
            return super().get_objects_permissions(objects_ids, permissions)
        result = []
        for object_id in objects_ids:
            perms = {}
            for ace in self._store.by_object.get(object_id, ()):
                permission = ace.split(":", 2)[2]
                perms[permission] = set(self._store[ace])
            result.append(perms)
        return result


def load_from_config(config):
    return Permission()
