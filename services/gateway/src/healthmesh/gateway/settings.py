from healthmesh.common.settings import CommonSettings


class Settings(CommonSettings):
    max_upload_bytes: int = 4 * 1024**3
    """Uploads larger than this are refused with 413 (Apple Health exports reach a few GB)."""
    max_field_bytes: int = 1024**2
    metrics_max_raw_points: int = 5000
