from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTROL: _ClassVar[Channel]
    INPUT: _ClassVar[Channel]
    MEDIA: _ClassVar[Channel]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOST: _ClassVar[Role]
    CLIENT: _ClassVar[Role]

class Codec(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEVC: _ClassVar[Codec]
    H264: _ClassVar[Codec]
    AV1: _ClassVar[Codec]

class Platform(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINUX: _ClassVar[Platform]
    WINDOWS: _ClassVar[Platform]
    MACOS: _ClassVar[Platform]
    ANDROID: _ClassVar[Platform]
    QUEST: _ClassVar[Platform]

class RejectReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECT_NONE: _ClassVar[RejectReason]
    REJECT_BUSY: _ClassVar[RejectReason]
    REJECT_NO_COMMON_CODEC: _ClassVar[RejectReason]
    REJECT_UNSUPPORTED_VERSION: _ClassVar[RejectReason]
    REJECT_NOT_AUTHORIZED: _ClassVar[RejectReason]
    REJECT_INVALID_PARAMETERS: _ClassVar[RejectReason]

class DisconnectReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISCONNECT_UNSPECIFIED: _ClassVar[DisconnectReason]
    DISCONNECT_NORMAL: _ClassVar[DisconnectReason]
    DISCONNECT_IDLE_TIMEOUT: _ClassVar[DisconnectReason]
    DISCONNECT_NOT_AUTHORIZED: _ClassVar[DisconnectReason]
    DISCONNECT_PROTOCOL_ERROR: _ClassVar[DisconnectReason]
    DISCONNECT_REPLACED: _ClassVar[DisconnectReason]
    DISCONNECT_SHUTDOWN: _ClassVar[DisconnectReason]
    DISCONNECT_KEYS_EXHAUSTED: _ClassVar[DisconnectReason]
    DISCONNECT_HANDSHAKE_TIMEOUT: _ClassVar[DisconnectReason]
    DISCONNECT_HOST_KEY_CHANGED: _ClassVar[DisconnectReason]
    DISCONNECT_REJECTED: _ClassVar[DisconnectReason]

class FecScheme(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEC_XOR: _ClassVar[FecScheme]
    FEC_REED_SOLOMON: _ClassVar[FecScheme]
CONTROL: Channel
INPUT: Channel
MEDIA: Channel
HOST: Role
CLIENT: Role
HEVC: Codec
H264: Codec
AV1: Codec
LINUX: Platform
WINDOWS: Platform
MACOS: Platform
ANDROID: Platform
QUEST: Platform
REJECT_NONE: RejectReason
REJECT_BUSY: RejectReason
REJECT_NO_COMMON_CODEC: RejectReason
REJECT_UNSUPPORTED_VERSION: RejectReason
REJECT_NOT_AUTHORIZED: RejectReason
REJECT_INVALID_PARAMETERS: RejectReason
DISCONNECT_UNSPECIFIED: DisconnectReason
DISCONNECT_NORMAL: DisconnectReason
DISCONNECT_IDLE_TIMEOUT: DisconnectReason
DISCONNECT_NOT_AUTHORIZED: DisconnectReason
DISCONNECT_PROTOCOL_ERROR: DisconnectReason
DISCONNECT_REPLACED: DisconnectReason
DISCONNECT_SHUTDOWN: DisconnectReason
DISCONNECT_KEYS_EXHAUSTED: DisconnectReason
DISCONNECT_HANDSHAKE_TIMEOUT: DisconnectReason
DISCONNECT_HOST_KEY_CHANGED: DisconnectReason
DISCONNECT_REJECTED: DisconnectReason
FEC_XOR: FecScheme
FEC_REED_SOLOMON: FecScheme

class Message(_message.Message):
    __slots__ = ("control", "input", "media", "retransmit_of")
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    RETRANSMIT_OF_FIELD_NUMBER: _ClassVar[int]
    control: ControlMessage
    input: InputMessage
    media: MediaMessage
    retransmit_of: int
    def __init__(self, control: _Optional[_Union[ControlMessage, _Mapping]] = ..., input: _Optional[_Union[InputMessage, _Mapping]] = ..., media: _Optional[_Union[MediaMessage, _Mapping]] = ..., retransmit_of: _Optional[int] = ...) -> None: ...

class ControlMessage(_message.Message):
    __slots__ = ("hello", "hello_ack", "ping", "pong", "stats", "congestion", "rfi", "monitor_list", "select_monitor", "nack", "encoder_control", "pose_update", "vr_timing", "hand_pose_update", "clipboard", "file_header", "file_status", "latency", "disconnect", "keyframe_request")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HELLO_ACK_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    PONG_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    CONGESTION_FIELD_NUMBER: _ClassVar[int]
    RFI_FIELD_NUMBER: _ClassVar[int]
    MONITOR_LIST_FIELD_NUMBER: _ClassVar[int]
    SELECT_MONITOR_FIELD_NUMBER: _ClassVar[int]
    NACK_FIELD_NUMBER: _ClassVar[int]
    ENCODER_CONTROL_FIELD_NUMBER: _ClassVar[int]
    POSE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    VR_TIMING_FIELD_NUMBER: _ClassVar[int]
    HAND_POSE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    CLIPBOARD_FIELD_NUMBER: _ClassVar[int]
    FILE_HEADER_FIELD_NUMBER: _ClassVar[int]
    FILE_STATUS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    KEYFRAME_REQUEST_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    hello_ack: HelloAck
    ping: Ping
    pong: Pong
    stats: StatsReport
    congestion: CongestionControl
    rfi: ReferenceInvalidation
    monitor_list: MonitorList
    select_monitor: SelectMonitor
    nack: Nack
    encoder_control: EncoderControl
    pose_update: PoseUpdate
    vr_timing: VrTiming
    hand_pose_update: HandPoseUpdate
    clipboard: ClipboardMessage
    file_header: FileHeader
    file_status: FileStatus
    latency: LatencyStats
    disconnect: Disconnect
    keyframe_request: KeyframeRequest
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., hello_ack: _Optional[_Union[HelloAck, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ..., pong: _Optional[_Union[Pong, _Mapping]] = ..., stats: _Optional[_Union[StatsReport, _Mapping]] = ..., congestion: _Optional[_Union[CongestionControl, _Mapping]] = ..., rfi: _Optional[_Union[ReferenceInvalidation, _Mapping]] = ..., monitor_list: _Optional[_Union[MonitorList, _Mapping]] = ..., select_monitor: _Optional[_Union[SelectMonitor, _Mapping]] = ..., nack: _Optional[_Union[Nack, _Mapping]] = ..., encoder_control: _Optional[_Union[EncoderControl, _Mapping]] = ..., pose_update: _Optional[_Union[PoseUpdate, _Mapping]] = ..., vr_timing: _Optional[_Union[VrTiming, _Mapping]] = ..., hand_pose_update: _Optional[_Union[HandPoseUpdate, _Mapping]] = ..., clipboard: _Optional[_Union[ClipboardMessage, _Mapping]] = ..., file_header: _Optional[_Union[FileHeader, _Mapping]] = ..., file_status: _Optional[_Union[FileStatus, _Mapping]] = ..., latency: _Optional[_Union[LatencyStats, _Mapping]] = ..., disconnect: _Optional[_Union[Disconnect, _Mapping]] = ..., keyframe_request: _Optional[_Union[KeyframeRequest, _Mapping]] = ...) -> None: ...

class Resolution(_message.Message):
    __slots__ = ("width", "height")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("client_name", "platform", "supported_codecs", "max_resolution", "max_fps", "input_caps", "protocol_version", "public_addr", "max_bitrate_kbps", "keyframe_interval_ms")
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    SUPPORTED_CODECS_FIELD_NUMBER: _ClassVar[int]
    MAX_RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    MAX_FPS_FIELD_NUMBER: _ClassVar[int]
    INPUT_CAPS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_ADDR_FIELD_NUMBER: _ClassVar[int]
    MAX_BITRATE_KBPS_FIELD_NUMBER: _ClassVar[int]
    KEYFRAME_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    client_name: str
    platform: Platform
    supported_codecs: _containers.RepeatedScalarFieldContainer[Codec]
    max_resolution: Resolution
    max_fps: int
    input_caps: int
    protocol_version: int
    public_addr: str
    max_bitrate_kbps: int
    keyframe_interval_ms: int
    def __init__(self, client_name: _Optional[str] = ..., platform: _Optional[_Union[Platform, str]] = ..., supported_codecs: _Optional[_Iterable[_Union[Codec, str]]] = ..., max_resolution: _Optional[_Union[Resolution, _Mapping]] = ..., max_fps: _Optional[int] = ..., input_caps: _Optional[int] = ..., protocol_version: _Optional[int] = ..., public_addr: _Optional[str] = ..., max_bitrate_kbps: _Optional[int] = ..., keyframe_interval_ms: _Optional[int] = ...) -> None: ...

class HelloAck(_message.Message):
    __slots__ = ("accepted", "selected_codec", "stream_resolution", "fps", "initial_bitrate_kbps", "keyframe_interval_ms", "session_id", "session_alias", "public_addr", "reject_reason", "reject_message")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    SELECTED_CODEC_FIELD_NUMBER: _ClassVar[int]
    STREAM_RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    INITIAL_BITRATE_KBPS_FIELD_NUMBER: _ClassVar[int]
    KEYFRAME_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ALIAS_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_ADDR_FIELD_NUMBER: _ClassVar[int]
    REJECT_REASON_FIELD_NUMBER: _ClassVar[int]
    REJECT_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    selected_codec: Codec
    stream_resolution: Resolution
    fps: int
    initial_bitrate_kbps: int
    keyframe_interval_ms: int
    session_id: bytes
    session_alias: int
    public_addr: str
    reject_reason: RejectReason
    reject_message: str
    def __init__(self, accepted: _Optional[bool] = ..., selected_codec: _Optional[_Union[Codec, str]] = ..., stream_resolution: _Optional[_Union[Resolution, _Mapping]] = ..., fps: _Optional[int] = ..., initial_bitrate_kbps: _Optional[int] = ..., keyframe_interval_ms: _Optional[int] = ..., session_id: _Optional[bytes] = ..., session_alias: _Optional[int] = ..., public_addr: _Optional[str] = ..., reject_reason: _Optional[_Union[RejectReason, str]] = ..., reject_message: _Optional[str] = ...) -> None: ...

class Ping(_message.Message):
    __slots__ = ("timestamp_us",)
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    timestamp_us: int
    def __init__(self, timestamp_us: _Optional[int] = ...) -> None: ...

class Pong(_message.Message):
    __slots__ = ("timestamp_us",)
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    timestamp_us: int
    def __init__(self, timestamp_us: _Optional[int] = ...) -> None: ...

class StatsReport(_message.Message):
    __slots__ = ("period_ms", "received_packets", "lost_packets", "rtt_us", "jitter_us", "queue_delay_us", "received_bytes", "fec_recovered", "frames_dropped")
    PERIOD_MS_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_PACKETS_FIELD_NUMBER: _ClassVar[int]
    LOST_PACKETS_FIELD_NUMBER: _ClassVar[int]
    RTT_US_FIELD_NUMBER: _ClassVar[int]
    JITTER_US_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DELAY_US_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_BYTES_FIELD_NUMBER: _ClassVar[int]
    FEC_RECOVERED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    period_ms: int
    received_packets: int
    lost_packets: int
    rtt_us: int
    jitter_us: int
    queue_delay_us: int
    received_bytes: int
    fec_recovered: int
    frames_dropped: int
    def __init__(self, period_ms: _Optional[int] = ..., received_packets: _Optional[int] = ..., lost_packets: _Optional[int] = ..., rtt_us: _Optional[int] = ..., jitter_us: _Optional[int] = ..., queue_delay_us: _Optional[int] = ..., received_bytes: _Optional[int] = ..., fec_recovered: _Optional[int] = ..., frames_dropped: _Optional[int] = ...) -> None: ...

class CongestionControl(_message.Message):
    __slots__ = ("target_bitrate_kbps", "target_fps")
    TARGET_BITRATE_KBPS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FPS_FIELD_NUMBER: _ClassVar[int]
    target_bitrate_kbps: int
    target_fps: int
    def __init__(self, target_bitrate_kbps: _Optional[int] = ..., target_fps: _Optional[int] = ...) -> None: ...

class ReferenceInvalidation(_message.Message):
    __slots__ = ("last_valid_frame_id",)
    LAST_VALID_FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    last_valid_frame_id: int
    def __init__(self, last_valid_frame_id: _Optional[int] = ...) -> None: ...

class MonitorInfo(_message.Message):
    __slots__ = ("id", "name", "width", "height")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    width: int
    height: int
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class MonitorList(_message.Message):
    __slots__ = ("monitors",)
    MONITORS_FIELD_NUMBER: _ClassVar[int]
    monitors: _containers.RepeatedCompositeFieldContainer[MonitorInfo]
    def __init__(self, monitors: _Optional[_Iterable[_Union[MonitorInfo, _Mapping]]] = ...) -> None: ...

class SelectMonitor(_message.Message):
    __slots__ = ("monitor_id",)
    MONITOR_ID_FIELD_NUMBER: _ClassVar[int]
    monitor_id: int
    def __init__(self, monitor_id: _Optional[int] = ...) -> None: ...

class Nack(_message.Message):
    __slots__ = ("packet_ids",)
    PACKET_IDS_FIELD_NUMBER: _ClassVar[int]
    packet_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, packet_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class EncoderControl(_message.Message):
    __slots__ = ("skip_frames",)
    SKIP_FRAMES_FIELD_NUMBER: _ClassVar[int]
    skip_frames: int
    def __init__(self, skip_frames: _Optional[int] = ...) -> None: ...

class PoseUpdate(_message.Message):
    __slots__ = ("timestamp_us", "position_x", "position_y", "position_z", "orientation_x", "orientation_y", "orientation_z", "orientation_w")
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    POSITION_X_FIELD_NUMBER: _ClassVar[int]
    POSITION_Y_FIELD_NUMBER: _ClassVar[int]
    POSITION_Z_FIELD_NUMBER: _ClassVar[int]
    ORIENTATION_X_FIELD_NUMBER: _ClassVar[int]
    ORIENTATION_Y_FIELD_NUMBER: _ClassVar[int]
    ORIENTATION_Z_FIELD_NUMBER: _ClassVar[int]
    ORIENTATION_W_FIELD_NUMBER: _ClassVar[int]
    timestamp_us: int
    position_x: float
    position_y: float
    position_z: float
    orientation_x: float
    orientation_y: float
    orientation_z: float
    orientation_w: float
    def __init__(self, timestamp_us: _Optional[int] = ..., position_x: _Optional[float] = ..., position_y: _Optional[float] = ..., position_z: _Optional[float] = ..., orientation_x: _Optional[float] = ..., orientation_y: _Optional[float] = ..., orientation_z: _Optional[float] = ..., orientation_w: _Optional[float] = ...) -> None: ...

class VrTiming(_message.Message):
    __slots__ = ("refresh_hz", "vsync_offset_us")
    REFRESH_HZ_FIELD_NUMBER: _ClassVar[int]
    VSYNC_OFFSET_US_FIELD_NUMBER: _ClassVar[int]
    refresh_hz: float
    vsync_offset_us: int
    def __init__(self, refresh_hz: _Optional[float] = ..., vsync_offset_us: _Optional[int] = ...) -> None: ...

class HandPoseUpdate(_message.Message):
    __slots__ = ("timestamp_us", "hand_id", "position_x", "position_y", "position_z", "orientation_x", "orientation_y", "orientation_z", "orientation_w", "linear_velocity_x", "linear_velocity_y", "linear_velocity_z", "angular_velocity_x", "angular_velocity_y", "angular_velocity_z")
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    HAND_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_X_FIELD_NUMBER: _ClassVar[int]
    POSITION_Y_FIELD_NUMBER: _ClassVar[int]
    POSITION_Z_FIELD_NUMBER: _ClassVar[int]
    ORIENTATION_X_FIELD_NUMBER: _ClassVar[int]
    ORIENTATION_Y_FIELD_NUMBER: _ClassVar[int]
    ORIENTATION_Z_FIELD_NUMBER: _ClassVar[int]
    ORIENTATION_W_FIELD_NUMBER: _ClassVar[int]
    LINEAR_VELOCITY_X_FIELD_NUMBER: _ClassVar[int]
    LINEAR_VELOCITY_Y_FIELD_NUMBER: _ClassVar[int]
    LINEAR_VELOCITY_Z_FIELD_NUMBER: _ClassVar[int]
    ANGULAR_VELOCITY_X_FIELD_NUMBER: _ClassVar[int]
    ANGULAR_VELOCITY_Y_FIELD_NUMBER: _ClassVar[int]
    ANGULAR_VELOCITY_Z_FIELD_NUMBER: _ClassVar[int]
    timestamp_us: int
    hand_id: int
    position_x: float
    position_y: float
    position_z: float
    orientation_x: float
    orientation_y: float
    orientation_z: float
    orientation_w: float
    linear_velocity_x: float
    linear_velocity_y: float
    linear_velocity_z: float
    angular_velocity_x: float
    angular_velocity_y: float
    angular_velocity_z: float
    def __init__(self, timestamp_us: _Optional[int] = ..., hand_id: _Optional[int] = ..., position_x: _Optional[float] = ..., position_y: _Optional[float] = ..., position_z: _Optional[float] = ..., orientation_x: _Optional[float] = ..., orientation_y: _Optional[float] = ..., orientation_z: _Optional[float] = ..., orientation_w: _Optional[float] = ..., linear_velocity_x: _Optional[float] = ..., linear_velocity_y: _Optional[float] = ..., linear_velocity_z: _Optional[float] = ..., angular_velocity_x: _Optional[float] = ..., angular_velocity_y: _Optional[float] = ..., angular_velocity_z: _Optional[float] = ...) -> None: ...

class ClipboardMessage(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class FileHeader(_message.Message):
    __slots__ = ("file_id", "filename", "file_size", "checksum_sha256", "chunk_size", "total_chunks")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_SHA256_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    file_id: int
    filename: str
    file_size: int
    checksum_sha256: str
    chunk_size: int
    total_chunks: int
    def __init__(self, file_id: _Optional[int] = ..., filename: _Optional[str] = ..., file_size: _Optional[int] = ..., checksum_sha256: _Optional[str] = ..., chunk_size: _Optional[int] = ..., total_chunks: _Optional[int] = ...) -> None: ...

class FileStatus(_message.Message):
    __slots__ = ("file_id", "status", "message")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PENDING: _ClassVar[FileStatus.Status]
        IN_PROGRESS: _ClassVar[FileStatus.Status]
        COMPLETE: _ClassVar[FileStatus.Status]
        ERROR: _ClassVar[FileStatus.Status]
    PENDING: FileStatus.Status
    IN_PROGRESS: FileStatus.Status
    COMPLETE: FileStatus.Status
    ERROR: FileStatus.Status
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    file_id: int
    status: FileStatus.Status
    message: str
    def __init__(self, file_id: _Optional[int] = ..., status: _Optional[_Union[FileStatus.Status, str]] = ..., message: _Optional[str] = ...) -> None: ...

class LatencyStats(_message.Message):
    __slots__ = ("frame_id", "capture_us", "encode_us", "network_us", "decode_us", "render_us", "total_us")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_US_FIELD_NUMBER: _ClassVar[int]
    ENCODE_US_FIELD_NUMBER: _ClassVar[int]
    NETWORK_US_FIELD_NUMBER: _ClassVar[int]
    DECODE_US_FIELD_NUMBER: _ClassVar[int]
    RENDER_US_FIELD_NUMBER: _ClassVar[int]
    TOTAL_US_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    capture_us: int
    encode_us: int
    network_us: int
    decode_us: int
    render_us: int
    total_us: int
    def __init__(self, frame_id: _Optional[int] = ..., capture_us: _Optional[int] = ..., encode_us: _Optional[int] = ..., network_us: _Optional[int] = ..., decode_us: _Optional[int] = ..., render_us: _Optional[int] = ..., total_us: _Optional[int] = ...) -> None: ...

class Disconnect(_message.Message):
    __slots__ = ("reason", "message")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    reason: DisconnectReason
    message: str
    def __init__(self, reason: _Optional[_Union[DisconnectReason, str]] = ..., message: _Optional[str] = ...) -> None: ...

class KeyframeRequest(_message.Message):
    __slots__ = ("last_complete_frame_id",)
    LAST_COMPLETE_FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    last_complete_frame_id: int
    def __init__(self, last_complete_frame_id: _Optional[int] = ...) -> None: ...

class InputMessage(_message.Message):
    __slots__ = ("timestamp_us", "mouse_move", "mouse_button", "key", "scroll", "gamepad", "mouse_relative")
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    MOUSE_MOVE_FIELD_NUMBER: _ClassVar[int]
    MOUSE_BUTTON_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    SCROLL_FIELD_NUMBER: _ClassVar[int]
    GAMEPAD_FIELD_NUMBER: _ClassVar[int]
    MOUSE_RELATIVE_FIELD_NUMBER: _ClassVar[int]
    timestamp_us: int
    mouse_move: MouseMove
    mouse_button: MouseButton
    key: Key
    scroll: Scroll
    gamepad: Gamepad
    mouse_relative: MouseRelative
    def __init__(self, timestamp_us: _Optional[int] = ..., mouse_move: _Optional[_Union[MouseMove, _Mapping]] = ..., mouse_button: _Optional[_Union[MouseButton, _Mapping]] = ..., key: _Optional[_Union[Key, _Mapping]] = ..., scroll: _Optional[_Union[Scroll, _Mapping]] = ..., gamepad: _Optional[_Union[Gamepad, _Mapping]] = ..., mouse_relative: _Optional[_Union[MouseRelative, _Mapping]] = ...) -> None: ...

class MouseMove(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class MouseRelative(_message.Message):
    __slots__ = ("dx", "dy")
    DX_FIELD_NUMBER: _ClassVar[int]
    DY_FIELD_NUMBER: _ClassVar[int]
    dx: float
    dy: float
    def __init__(self, dx: _Optional[float] = ..., dy: _Optional[float] = ...) -> None: ...

class MouseButton(_message.Message):
    __slots__ = ("button", "pressed")
    BUTTON_FIELD_NUMBER: _ClassVar[int]
    PRESSED_FIELD_NUMBER: _ClassVar[int]
    button: int
    pressed: bool
    def __init__(self, button: _Optional[int] = ..., pressed: _Optional[bool] = ...) -> None: ...

class Key(_message.Message):
    __slots__ = ("keycode", "pressed")
    KEYCODE_FIELD_NUMBER: _ClassVar[int]
    PRESSED_FIELD_NUMBER: _ClassVar[int]
    keycode: int
    pressed: bool
    def __init__(self, keycode: _Optional[int] = ..., pressed: _Optional[bool] = ...) -> None: ...

class Scroll(_message.Message):
    __slots__ = ("dx", "dy")
    DX_FIELD_NUMBER: _ClassVar[int]
    DY_FIELD_NUMBER: _ClassVar[int]
    dx: float
    dy: float
    def __init__(self, dx: _Optional[float] = ..., dy: _Optional[float] = ...) -> None: ...

class GamepadAxis(_message.Message):
    __slots__ = ("axis", "value")
    AXIS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    axis: int
    value: float
    def __init__(self, axis: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...

class GamepadButton(_message.Message):
    __slots__ = ("button", "pressed")
    BUTTON_FIELD_NUMBER: _ClassVar[int]
    PRESSED_FIELD_NUMBER: _ClassVar[int]
    button: int
    pressed: bool
    def __init__(self, button: _Optional[int] = ..., pressed: _Optional[bool] = ...) -> None: ...

class Gamepad(_message.Message):
    __slots__ = ("gamepad_id", "axes", "buttons")
    GAMEPAD_ID_FIELD_NUMBER: _ClassVar[int]
    AXES_FIELD_NUMBER: _ClassVar[int]
    BUTTONS_FIELD_NUMBER: _ClassVar[int]
    gamepad_id: int
    axes: _containers.RepeatedCompositeFieldContainer[GamepadAxis]
    buttons: _containers.RepeatedCompositeFieldContainer[GamepadButton]
    def __init__(self, gamepad_id: _Optional[int] = ..., axes: _Optional[_Iterable[_Union[GamepadAxis, _Mapping]]] = ..., buttons: _Optional[_Iterable[_Union[GamepadButton, _Mapping]]] = ...) -> None: ...

class MediaMessage(_message.Message):
    __slots__ = ("video", "fec", "audio", "file_chunk")
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    FEC_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    FILE_CHUNK_FIELD_NUMBER: _ClassVar[int]
    video: VideoChunk
    fec: FecPacket
    audio: AudioPacket
    file_chunk: FileChunk
    def __init__(self, video: _Optional[_Union[VideoChunk, _Mapping]] = ..., fec: _Optional[_Union[FecPacket, _Mapping]] = ..., audio: _Optional[_Union[AudioPacket, _Mapping]] = ..., file_chunk: _Optional[_Union[FileChunk, _Mapping]] = ...) -> None: ...

class VideoChunk(_message.Message):
    __slots__ = ("frame_id", "chunk_index", "chunk_count", "timestamp_us", "keyframe", "payload", "capture_us", "encode_us", "send_us")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    KEYFRAME_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_US_FIELD_NUMBER: _ClassVar[int]
    ENCODE_US_FIELD_NUMBER: _ClassVar[int]
    SEND_US_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    chunk_index: int
    chunk_count: int
    timestamp_us: int
    keyframe: bool
    payload: bytes
    capture_us: int
    encode_us: int
    send_us: int
    def __init__(self, frame_id: _Optional[int] = ..., chunk_index: _Optional[int] = ..., chunk_count: _Optional[int] = ..., timestamp_us: _Optional[int] = ..., keyframe: _Optional[bool] = ..., payload: _Optional[bytes] = ..., capture_us: _Optional[int] = ..., encode_us: _Optional[int] = ..., send_us: _Optional[int] = ...) -> None: ...

class FecPacket(_message.Message):
    __slots__ = ("group_id", "first_packet_id", "shard_count", "parity_index", "payload", "shard_lengths", "packet_ids", "parity_count", "scheme")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_PACKET_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    PARITY_INDEX_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SHARD_LENGTHS_FIELD_NUMBER: _ClassVar[int]
    PACKET_IDS_FIELD_NUMBER: _ClassVar[int]
    PARITY_COUNT_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    group_id: int
    first_packet_id: int
    shard_count: int
    parity_index: int
    payload: bytes
    shard_lengths: _containers.RepeatedScalarFieldContainer[int]
    packet_ids: _containers.RepeatedScalarFieldContainer[int]
    parity_count: int
    scheme: FecScheme
    def __init__(self, group_id: _Optional[int] = ..., first_packet_id: _Optional[int] = ..., shard_count: _Optional[int] = ..., parity_index: _Optional[int] = ..., payload: _Optional[bytes] = ..., shard_lengths: _Optional[_Iterable[int]] = ..., packet_ids: _Optional[_Iterable[int]] = ..., parity_count: _Optional[int] = ..., scheme: _Optional[_Union[FecScheme, str]] = ...) -> None: ...

class AudioPacket(_message.Message):
    __slots__ = ("timestamp_us", "payload")
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    timestamp_us: int
    payload: bytes
    def __init__(self, timestamp_us: _Optional[int] = ..., payload: _Optional[bytes] = ...) -> None: ...

class FileChunk(_message.Message):
    __slots__ = ("file_id", "chunk_index", "payload")
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_INDEX_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    file_id: int
    chunk_index: int
    payload: bytes
    def __init__(self, file_id: _Optional[int] = ..., chunk_index: _Optional[int] = ..., payload: _Optional[bytes] = ...) -> None: ...

class IdentityPayload(_message.Message):
    __slots__ = ("identity_key", "signature", "session_alias", "protocol_version")
    IDENTITY_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ALIAS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    identity_key: bytes
    signature: bytes
    session_alias: int
    protocol_version: int
    def __init__(self, identity_key: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., session_alias: _Optional[int] = ..., protocol_version: _Optional[int] = ...) -> None: ...
