from healthmesh.common.settings import CommonSettings


class Settings(CommonSettings):
    importer_group: str = "connectors-importers"
    import_batch_rows: int = 500
    import_batch_bytes: int = 256 * 1024
    """Raw batches stay far below Kafka's 1 MB message limit."""
