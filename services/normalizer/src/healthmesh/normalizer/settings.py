from healthmesh.common.settings import CommonSettings


class Settings(CommonSettings):
    consumer_group: str = "normalizer"
    batch_max_records: int = 200
    """Raw messages written per database transaction."""
