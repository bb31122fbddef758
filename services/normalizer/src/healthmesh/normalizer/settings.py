from healthmesh.common.settings import CommonSettings


class Settings(CommonSettings):
    consumer_group: str = "normalizer"
    batch_max_records: int = 200
    """Raw messages written per database transaction."""
    raw_archive_retention_days: int = 730
    """Raw events older than this are pruned from the archive (and can no longer be
    reprocessed); 0 keeps them forever."""
    archive_prune_interval_s: float = 3600.0
