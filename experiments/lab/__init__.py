"""The native lab: `from experiments.lab import Lab, LabConfig`.

lab = Lab(LabConfig.from_env(app_port=18000))
lab.up(profile="embedded", app_env={"POPULAR_CACHE": "off"})
lab.restart("app", app_env={"INTERACTIONS_MODE": "sync"})
lab.status()  # {"app": ComponentStatus(...), ...}
lab.down()
"""

from experiments.lab.config import LabConfig, LabConfigError
from experiments.lab.lab import ComponentStatus, Lab, LabError

__all__ = ["ComponentStatus", "Lab", "LabConfig", "LabConfigError", "LabError"]
