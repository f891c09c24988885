"""The development SMTP server (platform/mailcatcher.py) for any suite: loaded by path, since
platform/ is not a package (it would shadow the standard library's `platform`)."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_PATH = Path(__file__).resolve().parents[1] / "platform" / "mailcatcher.py"


def mailcatcher() -> ModuleType:
    name = "platform_script_mailcatcher"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _PATH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
