from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AudioFrame(_message.Message):
    __slots__ = ("call_sid", "payload", "codec", "sequence_number", "end_of_stream")
    CALL_SID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    END_OF_STREAM_FIELD_NUMBER: _ClassVar[int]
    call_sid: str
    payload: bytes
    codec: str
    sequence_number: int
    end_of_stream: bool
    def __init__(self, call_sid: _Optional[str] = ..., payload: _Optional[bytes] = ..., codec: _Optional[str] = ..., sequence_number: _Optional[int] = ..., end_of_stream: _Optional[bool] = ...) -> None: ...

class LossReport(_message.Message):
    __slots__ = ("received", "missing", "duplicates", "reordered", "gaps", "late_dropped")
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REORDERED_FIELD_NUMBER: _ClassVar[int]
    GAPS_FIELD_NUMBER: _ClassVar[int]
    LATE_DROPPED_FIELD_NUMBER: _ClassVar[int]
    received: int
    missing: int
    duplicates: int
    reordered: int
    gaps: int
    late_dropped: int
    def __init__(self, received: _Optional[int] = ..., missing: _Optional[int] = ..., duplicates: _Optional[int] = ..., reordered: _Optional[int] = ..., gaps: _Optional[int] = ..., late_dropped: _Optional[int] = ...) -> None: ...

class CallEvent(_message.Message):
    __slots__ = ("call_sid", "kind", "caller", "callee", "reason", "message", "codec", "sample_rate", "loss")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[CallEvent.Kind]
        INCOMING: _ClassVar[CallEvent.Kind]
        RINGING: _ClassVar[CallEvent.Kind]
        ANSWERED: _ClassVar[CallEvent.Kind]
        ENDED: _ClassVar[CallEvent.Kind]
        ERROR: _ClassVar[CallEvent.Kind]
        DTMF: _ClassVar[CallEvent.Kind]
        LOSS: _ClassVar[CallEvent.Kind]
    KIND_UNSPECIFIED: CallEvent.Kind
    INCOMING: CallEvent.Kind
    RINGING: CallEvent.Kind
    ANSWERED: CallEvent.Kind
    ENDED: CallEvent.Kind
    ERROR: CallEvent.Kind
    DTMF: CallEvent.Kind
    LOSS: CallEvent.Kind
    CALL_SID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    CALLEE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    call_sid: str
    kind: CallEvent.Kind
    caller: str
    callee: str
    reason: str
    message: str
    codec: str
    sample_rate: int
    loss: LossReport
    def __init__(self, call_sid: _Optional[str] = ..., kind: _Optional[_Union[CallEvent.Kind, str]] = ..., caller: _Optional[str] = ..., callee: _Optional[str] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., codec: _Optional[str] = ..., sample_rate: _Optional[int] = ..., loss: _Optional[_Union[LossReport, _Mapping]] = ...) -> None: ...

class EventStreamRequest(_message.Message):
    __slots__ = ("codec", "sample_rate", "auto_answer")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    AUTO_ANSWER_FIELD_NUMBER: _ClassVar[int]
    codec: str
    sample_rate: int
    auto_answer: bool
    def __init__(self, codec: _Optional[str] = ..., sample_rate: _Optional[int] = ..., auto_answer: _Optional[bool] = ...) -> None: ...

class EventStreamResponse(_message.Message):
    __slots__ = ("ok", "error_code", "error_message", "subscription_id")
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    error_code: str
    error_message: str
    subscription_id: str
    def __init__(self, ok: _Optional[bool] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., subscription_id: _Optional[str] = ...) -> None: ...

class OriginateRequest(_message.Message):
    __slots__ = ("to", "default_app_args", "ring_timeout_s")
    class DefaultAppArgsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TO_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_APP_ARGS_FIELD_NUMBER: _ClassVar[int]
    RING_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    to: str
    default_app_args: _containers.ScalarMap[str, str]
    ring_timeout_s: int
    def __init__(self, to: _Optional[str] = ..., default_app_args: _Optional[_Mapping[str, str]] = ..., ring_timeout_s: _Optional[int] = ..., **kwargs) -> None: ...

class OriginateResponse(_message.Message):
    __slots__ = ("ok", "call_sid", "error_code", "error_message")
    OK_FIELD_NUMBER: _ClassVar[int]
    CALL_SID_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    call_sid: str
    error_code: str
    error_message: str
    def __init__(self, ok: _Optional[bool] = ..., call_sid: _Optional[str] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class CallCommand(_message.Message):
    __slots__ = ("call_sid", "command", "digits", "ring_time_s")
    class Command(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        COMMAND_UNSPECIFIED: _ClassVar[CallCommand.Command]
        ANSWER: _ClassVar[CallCommand.Command]
        HANGUP: _ClassVar[CallCommand.Command]
        INTERRUPT: _ClassVar[CallCommand.Command]
        CONNECT: _ClassVar[CallCommand.Command]
        WHISPER: _ClassVar[CallCommand.Command]
        BARGE: _ClassVar[CallCommand.Command]
        SPY: _ClassVar[CallCommand.Command]
        LEAVE: _ClassVar[CallCommand.Command]
        SEND_DTMF: _ClassVar[CallCommand.Command]
    COMMAND_UNSPECIFIED: CallCommand.Command
    ANSWER: CallCommand.Command
    HANGUP: CallCommand.Command
    INTERRUPT: CallCommand.Command
    CONNECT: CallCommand.Command
    WHISPER: CallCommand.Command
    BARGE: CallCommand.Command
    SPY: CallCommand.Command
    LEAVE: CallCommand.Command
    SEND_DTMF: CallCommand.Command
    CALL_SID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    DIGITS_FIELD_NUMBER: _ClassVar[int]
    RING_TIME_S_FIELD_NUMBER: _ClassVar[int]
    call_sid: str
    command: CallCommand.Command
    digits: str
    ring_time_s: int
    def __init__(self, call_sid: _Optional[str] = ..., command: _Optional[_Union[CallCommand.Command, str]] = ..., digits: _Optional[str] = ..., ring_time_s: _Optional[int] = ...) -> None: ...

class CallCommandResponse(_message.Message):
    __slots__ = ("ok", "error_code", "error_message", "result_json")
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    error_code: str
    error_message: str
    result_json: str
    def __init__(self, ok: _Optional[bool] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., result_json: _Optional[str] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...
