from healthmesh.common.settings import CommonSettings


class Settings(CommonSettings):
    consumer_group: str = "normalizer"
    batch_max_records: int = 200
    """Raw messages written per database transaction."""
    fetch_partition_bytes: int = 4 << 20
    """How much of a raw partition one fetch brings. At Kafka's default (1 MB) a poll held three
    or four 256 kB batches of an import (~2,000 samples), and the round trips of each poll and
    transaction (fetch, ~20 statements, offset commit) left an Apple Health import at half the
    rate on a busy machine (issue 6). The import's peak RSS grew ~15 MB with 4 MB."""
    raw_archive_retention_days: int = 730
    """Raw events older than this are pruned from the archive (and can no longer be
    reprocessed); 0 keeps them forever."""
    archive_prune_interval_s: float = 3600.0
