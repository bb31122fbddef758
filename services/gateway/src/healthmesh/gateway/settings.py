"""The gateway's settings (`HEALTHMESH_...`): the common ones, plus the upload store's limits and
the resumable uploads' expiry, checkpoints and writers, and the raw series' page size."""

from pydantic import Field

from healthmesh.common.settings import CommonSettings


class Settings(CommonSettings):
    max_upload_bytes: int = 4 * 1024**3
    """Uploads larger than this are refused with 413 (Apple Health exports reach a few GB)."""
    max_field_bytes: int = 1024**2
    upload_expiry_s: int = Field(
        24 * 3600, gt=0, description="A resumable upload nobody writes to for this long is removed."
    )
    upload_sweep_interval_s: float = Field(
        600.0, gt=0, description="How often the gateway removes expired resumable uploads."
    )
    upload_checkpoint_bytes: int = Field(
        8 * 1024**2,
        gt=0,
        description="A chunk being received is fsync'd and its offset recorded every this many "
        "bytes, so a crash mid-chunk loses at most this much.",
    )
    upload_writers: int = Field(
        16,
        gt=0,
        description="Chunks one gateway process receives at once; each holds a PostgreSQL "
        "connection (its upload's lock) of a pool apart from the API's, so slow phones cannot "
        "starve the API. More get 503.",
    )
    metrics_max_raw_points: int = 5000
