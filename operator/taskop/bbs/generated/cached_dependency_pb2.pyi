from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class CachedDependency(_message.Message):
    __slots__ = ("name", "to", "cache_key", "log_source", "checksum_algorithm", "checksum_value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    CACHE_KEY_FIELD_NUMBER: _ClassVar[int]
    LOG_SOURCE_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    to: str
    cache_key: str
    log_source: str
    checksum_algorithm: str
    checksum_value: str
    def __init__(self, name: _Optional[str] = ..., to: _Optional[str] = ..., cache_key: _Optional[str] = ..., log_source: _Optional[str] = ..., checksum_algorithm: _Optional[str] = ..., checksum_value: _Optional[str] = ..., **kwargs) -> None: ...
