"""Named points where a fault test can freeze this process, to kill it exactly there.

With `EVENTS_FAULT_BREAKPOINT=<name>` in the environment, `fault_point(<name>)` writes
`<EVENTS_FAULT_BREAKPOINT_DIR>/<name>.reached` (holding the pid) and waits until the test
creates `<name>.release` next to it, or kills the process (SIGKILL, as a crash would). Without
the variable it costs one dictionary lookup. Tests: tests/provisioning/test_tenant_outbox.py.
"""

import os
import tempfile
import time
from pathlib import Path

ENV_POINT = "EVENTS_FAULT_BREAKPOINT"
ENV_DIR = "EVENTS_FAULT_BREAKPOINT_DIR"


def fault_point(name: str) -> None:
    if os.environ.get(ENV_POINT) != name:
        return
    directory = Path(os.environ.get(ENV_DIR) or tempfile.gettempdir())
    (directory / f"{name}.reached").write_text(str(os.getpid()))
    while not (directory / f"{name}.release").exists():
        time.sleep(0.05)
