"""Stack configuration, read once from Pulumi config into typed dataclasses, one module per domain.

Each domain module (image, workload, autoscaling, canary, database, retention, gpu, monitoring) holds its keys'
dataclass, the reader that fills it and the checks on it, so a new stack key is one line in Pulumi.yaml and
one change in its domain module. Shared machinery has its own module: `read` (the typed readers and the
dotted-key workaround), `settings_bridge` (the service settings a stack may set, checked by service/settings.py).
`stack` reads every domain and runs the checks that span them.

Every key is declared with its type and default in Pulumi.yaml, which is the only place defaults live: the
Pulumi CLI merges them into the stack's config, and `infra.mocked_run` does the same under mocks
(`infra.config_merge`, a port of the engine's merge).
"""

from infra.config.autoscaling import AutoscalingConfig
from infra.config.canary import CanaryConfig
from infra.config.database import BackupConfig, DatabaseConfig, RestoreConfig
from infra.config.gpu import GpuConfig, GpuNodePoolArgs
from infra.config.image import ImageConfig
from infra.config.monitoring import MonitoringConfig
from infra.config.read import StackConfigError
from infra.config.retention import RetentionConfig
from infra.config.settings_bridge import stack_settings
from infra.config.shadow import ShadowConfig
from infra.config.stack import SECRET_KEYS, StackConfig, load
from infra.config.workload import CONTAINER_PORT, SHUTDOWN_GRACE_S, ServiceConfig

__all__ = [
    "CONTAINER_PORT",
    "SECRET_KEYS",
    "SHUTDOWN_GRACE_S",
    "AutoscalingConfig",
    "BackupConfig",
    "CanaryConfig",
    "DatabaseConfig",
    "GpuConfig",
    "GpuNodePoolArgs",
    "ImageConfig",
    "MonitoringConfig",
    "RestoreConfig",
    "RetentionConfig",
    "ServiceConfig",
    "ShadowConfig",
    "StackConfig",
    "StackConfigError",
    "load",
    "stack_settings",
]
