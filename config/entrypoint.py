"""What every entry point (manage.py, wsgi, asgi, Celery) asks first: which service is this?

The code is shared; the service is chosen by its settings module alone. An entry point that
guessed (each used to default to a different service) would start the wrong service against
the wrong database without a word, so a missing DJANGO_SETTINGS_MODULE stops it instead.
"""

import os
from pathlib import Path

# A service is a settings module of its own beside base.py.
SERVICES = sorted(path.stem for path in (Path(__file__).parent / "settings").glob("*.py") if path.stem[0] != "_")
SERVICES.remove("base")


class SettingsModuleMissing(RuntimeError):
    pass


def settings_module_required(entry_point: str) -> str:
    module = os.environ.get("DJANGO_SETTINGS_MODULE", "").strip()
    if not module:
        choices = ", ".join(f"config.settings.{service}" for service in SERVICES)
        raise SettingsModuleMissing(
            f"{entry_point}: set DJANGO_SETTINGS_MODULE to the service to run ({choices}); "
            "`make up` and docker-compose set it for every process"
        )
    return module
