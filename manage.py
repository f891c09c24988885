#!/usr/bin/env python
"""One entry point for every service: DJANGO_SETTINGS_MODULE=config.settings.<service> python manage.py …"""

import sys


def main() -> None:
    from config.entrypoint import SettingsModuleMissing, settings_module_required

    try:
        settings_module_required("manage.py")
    except SettingsModuleMissing as missing:
        sys.exit(str(missing))
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
