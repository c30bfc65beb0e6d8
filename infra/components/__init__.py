"""One ComponentResource per deployable unit."""

from infra.components.database import Database, DatabaseArgs
from infra.components.gpu import GpuNodePool, GpuScheduling
from infra.components.image import ModelImage, ModelImageArgs
from infra.components.service import ModelService, ModelServiceArgs
from infra.config import GpuNodePoolArgs

__all__ = [
    "Database",
    "DatabaseArgs",
    "GpuNodePool",
    "GpuNodePoolArgs",
    "GpuScheduling",
    "ModelImage",
    "ModelImageArgs",
    "ModelService",
    "ModelServiceArgs",
]
