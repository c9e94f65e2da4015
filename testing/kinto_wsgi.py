"""The WSGI application of a Kinto ini file, for servers that take a `module:attribute` target
(the bench's PostgreSQL server runs it under granian: `granian --interface wsgi kinto_wsgi:application`
with `KINTO_INI=<path>` in the environment and this directory on PYTHONPATH). Each worker process
imports it and builds its own application, as production's Kinto does."""

import os

from pyramid.paster import get_app, setup_logging

INI = os.environ["KINTO_INI"]
setup_logging(INI)
application = get_app(INI, "main")
