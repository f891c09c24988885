"""The launcher scripts are not a package (platform/ would shadow the standard library's
`platform`), so the tests load them by path."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def script_load(name: str) -> ModuleType:
    module_name = f"platform_script_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "platform" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def devstack() -> ModuleType:
    return script_load("devstack")


@pytest.fixture(scope="session")
def testrun() -> ModuleType:
    return script_load("testrun")
