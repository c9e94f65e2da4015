"""A test-stack include for today's Kinto: kinto-remote-settings reloads its signer resources and
re-registers the `signer` capability on every collection creation (for glob resources), by a
`pop` of the capability then an `add_api_capability`. Under the stack's multi-threaded waitress
that is racy twice over: two collections created at the same moment make one of them fail with
HTTP 500 ("The 'signer' API capability was already registered"), and a `GET /v1/` in between sees
no signer capability at all. This include makes the reload atomic: reloads run one at a time, and
other threads keep seeing the previous capability until the new one replaces it. It changes
nothing else.

Enable with `kinto.includes = kinto_serial_signer_config ...` (this directory on PYTHONPATH).
"""

import functools
import threading

import kinto_remote_settings.signer as signer

_lock = threading.Lock()
_reloading = threading.local()


class _Capabilities(dict):
    """The registry's capabilities: during a reload, the reloading thread sees no `signer` (so it
    can register it again) while the entry stays in place for every other thread."""

    def _hidden(self, key):
        return key == "signer" and getattr(_reloading, "active", False)

    def pop(self, key, *default):
        if self._hidden(key):
            return self.get(key, *default)
        return super().pop(key, *default)

    def get(self, key, default=None):
        if self._hidden(key):
            return default
        return super().get(key, default)


def includeme(config):
    config.registry.api_capabilities = _Capabilities(config.registry.api_capabilities)
    original = signer.load_signed_resources_configuration
    if getattr(original, "serialized", False):
        return

    @functools.wraps(original)
    def serialized(*args, **kwargs):
        with _lock:
            _reloading.active = True
            try:
                return original(*args, **kwargs)
            finally:
                _reloading.active = False

    serialized.serialized = True
    # The plugin's subscriber looks the function up by name at each call.
    signer.load_signed_resources_configuration = serialized
