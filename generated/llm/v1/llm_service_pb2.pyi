import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UsageGroup(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USAGE_GROUP_UNSPECIFIED: _ClassVar[UsageGroup]
    USAGE_GROUP_CALLER: _ClassVar[UsageGroup]
    USAGE_GROUP_MODEL: _ClassVar[UsageGroup]
    USAGE_GROUP_DAY: _ClassVar[UsageGroup]
USAGE_GROUP_UNSPECIFIED: UsageGroup
USAGE_GROUP_CALLER: UsageGroup
USAGE_GROUP_MODEL: UsageGroup
USAGE_GROUP_DAY: UsageGroup

class Tool(_message.Message):
    __slots__ = ("type", "name", "description", "parameters")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    type: str
    name: str
    description: str
    parameters: _struct_pb2.Struct
    def __init__(self, type: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ToolCall(_message.Message):
    __slots__ = ("id", "name", "arguments", "index")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    arguments: _struct_pb2.Struct
    index: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., index: _Optional[int] = ...) -> None: ...

class ModelOptions(_message.Message):
    __slots__ = ("num_ctx", "top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty", "extra")
    NUM_CTX_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MIN_P_FIELD_NUMBER: _ClassVar[int]
    REPEAT_PENALTY_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_PENALTY_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_PENALTY_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    num_ctx: int
    top_k: int
    min_p: float
    repeat_penalty: float
    presence_penalty: float
    frequency_penalty: float
    extra: _struct_pb2.Struct
    def __init__(self, num_ctx: _Optional[int] = ..., top_k: _Optional[int] = ..., min_p: _Optional[float] = ..., repeat_penalty: _Optional[float] = ..., presence_penalty: _Optional[float] = ..., frequency_penalty: _Optional[float] = ..., extra: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class TokenLogprob(_message.Message):
    __slots__ = ("token", "logprob", "bytes", "top_logprobs")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    LOGPROB_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    TOP_LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    token: str
    logprob: float
    bytes: bytes
    top_logprobs: _containers.RepeatedCompositeFieldContainer[TokenLogprob]
    def __init__(self, token: _Optional[str] = ..., logprob: _Optional[float] = ..., bytes: _Optional[bytes] = ..., top_logprobs: _Optional[_Iterable[_Union[TokenLogprob, _Mapping]]] = ...) -> None: ...

class Durations(_message.Message):
    __slots__ = ("total_ns", "load_ns", "prompt_eval_ns", "eval_ns")
    TOTAL_NS_FIELD_NUMBER: _ClassVar[int]
    LOAD_NS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_EVAL_NS_FIELD_NUMBER: _ClassVar[int]
    EVAL_NS_FIELD_NUMBER: _ClassVar[int]
    total_ns: int
    load_ns: int
    prompt_eval_ns: int
    eval_ns: int
    def __init__(self, total_ns: _Optional[int] = ..., load_ns: _Optional[int] = ..., prompt_eval_ns: _Optional[int] = ..., eval_ns: _Optional[int] = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ("role", "content", "thinking", "images", "tool_calls", "tool_call_id", "tool_name")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_NAME_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    thinking: str
    images: _containers.RepeatedScalarFieldContainer[bytes]
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    tool_call_id: str
    tool_name: str
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ..., thinking: _Optional[str] = ..., images: _Optional[_Iterable[bytes]] = ..., tool_calls: _Optional[_Iterable[_Union[ToolCall, _Mapping]]] = ..., tool_call_id: _Optional[str] = ..., tool_name: _Optional[str] = ...) -> None: ...

class ChatRequest(_message.Message):
    __slots__ = ("message", "model", "history", "max_tokens", "temperature", "top_p", "system", "stop", "seed", "format", "think", "messages", "images", "tools", "tool_choice", "output_format", "options", "keep_alive", "logprobs", "top_logprobs", "model_defaults", "max_tokens_include_reasoning")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    THINK_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    KEEP_ALIVE_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    TOP_LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    MODEL_DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_INCLUDE_REASONING_FIELD_NUMBER: _ClassVar[int]
    message: str
    model: str
    history: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    max_tokens: int
    temperature: float
    top_p: float
    system: str
    stop: _containers.RepeatedScalarFieldContainer[str]
    seed: int
    format: str
    think: str
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    images: _containers.RepeatedScalarFieldContainer[bytes]
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    tool_choice: str
    output_format: _struct_pb2.Value
    options: ModelOptions
    keep_alive: str
    logprobs: bool
    top_logprobs: int
    model_defaults: bool
    max_tokens_include_reasoning: bool
    def __init__(self, message: _Optional[str] = ..., model: _Optional[str] = ..., history: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., system: _Optional[str] = ..., stop: _Optional[_Iterable[str]] = ..., seed: _Optional[int] = ..., format: _Optional[str] = ..., think: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., images: _Optional[_Iterable[bytes]] = ..., tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ..., tool_choice: _Optional[str] = ..., output_format: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., options: _Optional[_Union[ModelOptions, _Mapping]] = ..., keep_alive: _Optional[str] = ..., logprobs: _Optional[bool] = ..., top_logprobs: _Optional[int] = ..., model_defaults: _Optional[bool] = ..., max_tokens_include_reasoning: _Optional[bool] = ...) -> None: ...

class ChatResponse(_message.Message):
    __slots__ = ("response", "thinking", "model", "prompt_tokens", "response_tokens", "total_tokens", "generation_time_ms", "done_reason", "timestamp", "load_time_ms", "tool_calls", "logprobs", "durations", "fallback_from")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    DONE_REASON_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    LOAD_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    DURATIONS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FROM_FIELD_NUMBER: _ClassVar[int]
    response: str
    thinking: str
    model: str
    prompt_tokens: int
    response_tokens: int
    total_tokens: int
    generation_time_ms: float
    done_reason: str
    timestamp: _timestamp_pb2.Timestamp
    load_time_ms: float
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    logprobs: _containers.RepeatedCompositeFieldContainer[TokenLogprob]
    durations: Durations
    fallback_from: str
    def __init__(self, response: _Optional[str] = ..., thinking: _Optional[str] = ..., model: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., response_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., generation_time_ms: _Optional[float] = ..., done_reason: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., load_time_ms: _Optional[float] = ..., tool_calls: _Optional[_Iterable[_Union[ToolCall, _Mapping]]] = ..., logprobs: _Optional[_Iterable[_Union[TokenLogprob, _Mapping]]] = ..., durations: _Optional[_Union[Durations, _Mapping]] = ..., fallback_from: _Optional[str] = ...) -> None: ...

class ChatStreamRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: ChatRequest
    def __init__(self, request: _Optional[_Union[ChatRequest, _Mapping]] = ...) -> None: ...

class ChatStreamResponse(_message.Message):
    __slots__ = ("content", "thinking", "done", "model", "done_reason", "prompt_tokens", "response_tokens", "total_tokens", "generation_time_ms", "time_to_first_token_ms", "tokens_per_second", "timestamp", "tool_calls", "logprobs", "durations", "fallback_from")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DONE_REASON_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    DURATIONS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FROM_FIELD_NUMBER: _ClassVar[int]
    content: str
    thinking: str
    done: bool
    model: str
    done_reason: str
    prompt_tokens: int
    response_tokens: int
    total_tokens: int
    generation_time_ms: float
    time_to_first_token_ms: float
    tokens_per_second: float
    timestamp: _timestamp_pb2.Timestamp
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    logprobs: _containers.RepeatedCompositeFieldContainer[TokenLogprob]
    durations: Durations
    fallback_from: str
    def __init__(self, content: _Optional[str] = ..., thinking: _Optional[str] = ..., done: _Optional[bool] = ..., model: _Optional[str] = ..., done_reason: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., response_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., generation_time_ms: _Optional[float] = ..., time_to_first_token_ms: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tool_calls: _Optional[_Iterable[_Union[ToolCall, _Mapping]]] = ..., logprobs: _Optional[_Iterable[_Union[TokenLogprob, _Mapping]]] = ..., durations: _Optional[_Union[Durations, _Mapping]] = ..., fallback_from: _Optional[str] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("input", "model", "truncate", "dimensions", "options", "keep_alive")
    INPUT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    KEEP_ALIVE_FIELD_NUMBER: _ClassVar[int]
    input: _containers.RepeatedScalarFieldContainer[str]
    model: str
    truncate: bool
    dimensions: int
    options: ModelOptions
    keep_alive: str
    def __init__(self, input: _Optional[_Iterable[str]] = ..., model: _Optional[str] = ..., truncate: _Optional[bool] = ..., dimensions: _Optional[int] = ..., options: _Optional[_Union[ModelOptions, _Mapping]] = ..., keep_alive: _Optional[str] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("model", "embeddings", "dimensions", "prompt_tokens", "generation_time_ms", "timestamp", "durations", "fallback_from")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    DURATIONS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FROM_FIELD_NUMBER: _ClassVar[int]
    model: str
    embeddings: _containers.RepeatedCompositeFieldContainer[Embedding]
    dimensions: int
    prompt_tokens: int
    generation_time_ms: float
    timestamp: _timestamp_pb2.Timestamp
    durations: Durations
    fallback_from: str
    def __init__(self, model: _Optional[str] = ..., embeddings: _Optional[_Iterable[_Union[Embedding, _Mapping]]] = ..., dimensions: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., generation_time_ms: _Optional[float] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., durations: _Optional[_Union[Durations, _Mapping]] = ..., fallback_from: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelDetails(_message.Message):
    __slots__ = ("parent_model", "format", "family", "families", "parameter_size", "quantization_level")
    PARENT_MODEL_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    FAMILIES_FIELD_NUMBER: _ClassVar[int]
    PARAMETER_SIZE_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_LEVEL_FIELD_NUMBER: _ClassVar[int]
    parent_model: str
    format: str
    family: str
    families: _containers.RepeatedScalarFieldContainer[str]
    parameter_size: str
    quantization_level: str
    def __init__(self, parent_model: _Optional[str] = ..., format: _Optional[str] = ..., family: _Optional[str] = ..., families: _Optional[_Iterable[str]] = ..., parameter_size: _Optional[str] = ..., quantization_level: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "model", "size", "digest", "modified_at", "details", "embedding")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    name: str
    model: str
    size: int
    digest: str
    modified_at: str
    details: ModelDetails
    embedding: bool
    def __init__(self, name: _Optional[str] = ..., model: _Optional[str] = ..., size: _Optional[int] = ..., digest: _Optional[str] = ..., modified_at: _Optional[str] = ..., details: _Optional[_Union[ModelDetails, _Mapping]] = ..., embedding: _Optional[bool] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "timestamp")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class HealthRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Configuration(_message.Message):
    __slots__ = ("ollama_base_url", "max_tokens", "temperature", "top_p", "timeout_seconds", "cache_duration_seconds", "default_model", "embedding_model", "key_models", "log_level", "max_concurrent", "max_queue", "queue_timeout_seconds", "first_token_timeout_seconds", "connect_timeout_seconds", "auth_enabled", "tls_enabled")
    OLLAMA_BASE_URL_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CACHE_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    KEY_MODELS_FIELD_NUMBER: _ClassVar[int]
    LOG_LEVEL_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FIRST_TOKEN_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CONNECT_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AUTH_ENABLED_FIELD_NUMBER: _ClassVar[int]
    TLS_ENABLED_FIELD_NUMBER: _ClassVar[int]
    ollama_base_url: str
    max_tokens: int
    temperature: float
    top_p: float
    timeout_seconds: float
    cache_duration_seconds: float
    default_model: str
    embedding_model: str
    key_models: _containers.RepeatedScalarFieldContainer[str]
    log_level: str
    max_concurrent: int
    max_queue: int
    queue_timeout_seconds: float
    first_token_timeout_seconds: float
    connect_timeout_seconds: float
    auth_enabled: bool
    tls_enabled: bool
    def __init__(self, ollama_base_url: _Optional[str] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., timeout_seconds: _Optional[float] = ..., cache_duration_seconds: _Optional[float] = ..., default_model: _Optional[str] = ..., embedding_model: _Optional[str] = ..., key_models: _Optional[_Iterable[str]] = ..., log_level: _Optional[str] = ..., max_concurrent: _Optional[int] = ..., max_queue: _Optional[int] = ..., queue_timeout_seconds: _Optional[float] = ..., first_token_timeout_seconds: _Optional[float] = ..., connect_timeout_seconds: _Optional[float] = ..., auth_enabled: _Optional[bool] = ..., tls_enabled: _Optional[bool] = ...) -> None: ...

class OllamaHost(_message.Message):
    __slots__ = ("url", "status", "in_flight", "requests", "failures", "last_error", "version", "response_time_ms", "models", "loaded")
    URL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    url: str
    status: str
    in_flight: int
    requests: int
    failures: int
    last_error: str
    version: str
    response_time_ms: float
    models: _containers.RepeatedScalarFieldContainer[str]
    loaded: _containers.RepeatedCompositeFieldContainer[RunningModel]
    def __init__(self, url: _Optional[str] = ..., status: _Optional[str] = ..., in_flight: _Optional[int] = ..., requests: _Optional[int] = ..., failures: _Optional[int] = ..., last_error: _Optional[str] = ..., version: _Optional[str] = ..., response_time_ms: _Optional[float] = ..., models: _Optional[_Iterable[str]] = ..., loaded: _Optional[_Iterable[_Union[RunningModel, _Mapping]]] = ...) -> None: ...

class OllamaStatus(_message.Message):
    __slots__ = ("status", "ollama_url", "version", "available_models", "bge_m3_available", "gpt_oss_available", "total_models", "last_check", "response_time_ms", "missing_models", "error", "hosts")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OLLAMA_URL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MODELS_FIELD_NUMBER: _ClassVar[int]
    BGE_M3_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    GPT_OSS_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MODELS_FIELD_NUMBER: _ClassVar[int]
    LAST_CHECK_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    MISSING_MODELS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    status: str
    ollama_url: str
    version: str
    available_models: _containers.RepeatedScalarFieldContainer[str]
    bge_m3_available: bool
    gpt_oss_available: bool
    total_models: int
    last_check: _timestamp_pb2.Timestamp
    response_time_ms: float
    missing_models: _containers.RepeatedScalarFieldContainer[str]
    error: str
    hosts: _containers.RepeatedCompositeFieldContainer[OllamaHost]
    def __init__(self, status: _Optional[str] = ..., ollama_url: _Optional[str] = ..., version: _Optional[str] = ..., available_models: _Optional[_Iterable[str]] = ..., bge_m3_available: _Optional[bool] = ..., gpt_oss_available: _Optional[bool] = ..., total_models: _Optional[int] = ..., last_check: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., response_time_ms: _Optional[float] = ..., missing_models: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ..., hosts: _Optional[_Iterable[_Union[OllamaHost, _Mapping]]] = ...) -> None: ...

class HealthResponse(_message.Message):
    __slots__ = ("status", "ollama", "configuration", "timestamp")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OLLAMA_FIELD_NUMBER: _ClassVar[int]
    CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    status: str
    ollama: OllamaStatus
    configuration: Configuration
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, status: _Optional[str] = ..., ollama: _Optional[_Union[OllamaStatus, _Mapping]] = ..., configuration: _Optional[_Union[Configuration, _Mapping]] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Counters(_message.Message):
    __slots__ = ("total_requests", "successful_requests", "failed_requests", "cancelled_requests", "failures_by_kind", "prompt_tokens", "response_tokens", "total_tokens", "average_generation_time_ms", "p50_generation_time_ms", "p95_generation_time_ms", "average_time_to_first_token_ms", "average_tokens_per_second", "streams", "fallbacks")
    class FailuresByKindEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TOTAL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSFUL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FAILED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_BY_KIND_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_GENERATION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    P50_GENERATION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    P95_GENERATION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_TIME_TO_FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    total_requests: int
    successful_requests: int
    failed_requests: int
    cancelled_requests: int
    failures_by_kind: _containers.ScalarMap[str, int]
    prompt_tokens: int
    response_tokens: int
    total_tokens: int
    average_generation_time_ms: float
    p50_generation_time_ms: float
    p95_generation_time_ms: float
    average_time_to_first_token_ms: float
    average_tokens_per_second: float
    streams: int
    fallbacks: int
    def __init__(self, total_requests: _Optional[int] = ..., successful_requests: _Optional[int] = ..., failed_requests: _Optional[int] = ..., cancelled_requests: _Optional[int] = ..., failures_by_kind: _Optional[_Mapping[str, int]] = ..., prompt_tokens: _Optional[int] = ..., response_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., average_generation_time_ms: _Optional[float] = ..., p50_generation_time_ms: _Optional[float] = ..., p95_generation_time_ms: _Optional[float] = ..., average_time_to_first_token_ms: _Optional[float] = ..., average_tokens_per_second: _Optional[float] = ..., streams: _Optional[int] = ..., fallbacks: _Optional[int] = ...) -> None: ...

class LaneStatus(_message.Message):
    __slots__ = ("name", "limit", "running", "queued")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    name: str
    limit: int
    running: int
    queued: int
    def __init__(self, name: _Optional[str] = ..., limit: _Optional[int] = ..., running: _Optional[int] = ..., queued: _Optional[int] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("totals", "per_model", "per_method", "last_request_time", "started_at", "uptime_seconds", "configuration", "timestamp", "hosts", "running_generations", "queued_generations", "retries", "lanes", "per_caller", "history", "recent_failures", "models_today", "today_since")
    class PerModelEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Counters
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Counters, _Mapping]] = ...) -> None: ...
    class PerMethodEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Counters
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Counters, _Mapping]] = ...) -> None: ...
    class PerCallerEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Counters
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Counters, _Mapping]] = ...) -> None: ...
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    PER_MODEL_FIELD_NUMBER: _ClassVar[int]
    PER_METHOD_FIELD_NUMBER: _ClassVar[int]
    LAST_REQUEST_TIME_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    LANES_FIELD_NUMBER: _ClassVar[int]
    PER_CALLER_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    RECENT_FAILURES_FIELD_NUMBER: _ClassVar[int]
    MODELS_TODAY_FIELD_NUMBER: _ClassVar[int]
    TODAY_SINCE_FIELD_NUMBER: _ClassVar[int]
    totals: Counters
    per_model: _containers.MessageMap[str, Counters]
    per_method: _containers.MessageMap[str, Counters]
    last_request_time: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    uptime_seconds: float
    configuration: Configuration
    timestamp: _timestamp_pb2.Timestamp
    hosts: _containers.RepeatedCompositeFieldContainer[OllamaHost]
    running_generations: int
    queued_generations: int
    retries: int
    lanes: _containers.RepeatedCompositeFieldContainer[LaneStatus]
    per_caller: _containers.MessageMap[str, Counters]
    history: _containers.RepeatedCompositeFieldContainer[HistoryBucket]
    recent_failures: _containers.RepeatedCompositeFieldContainer[RecentFailure]
    models_today: _containers.RepeatedCompositeFieldContainer[HistoryModelDay]
    today_since: _timestamp_pb2.Timestamp
    def __init__(self, totals: _Optional[_Union[Counters, _Mapping]] = ..., per_model: _Optional[_Mapping[str, Counters]] = ..., per_method: _Optional[_Mapping[str, Counters]] = ..., last_request_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., uptime_seconds: _Optional[float] = ..., configuration: _Optional[_Union[Configuration, _Mapping]] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hosts: _Optional[_Iterable[_Union[OllamaHost, _Mapping]]] = ..., running_generations: _Optional[int] = ..., queued_generations: _Optional[int] = ..., retries: _Optional[int] = ..., lanes: _Optional[_Iterable[_Union[LaneStatus, _Mapping]]] = ..., per_caller: _Optional[_Mapping[str, Counters]] = ..., history: _Optional[_Iterable[_Union[HistoryBucket, _Mapping]]] = ..., recent_failures: _Optional[_Iterable[_Union[RecentFailure, _Mapping]]] = ..., models_today: _Optional[_Iterable[_Union[HistoryModelDay, _Mapping]]] = ..., today_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class HistoryBucket(_message.Message):
    __slots__ = ("start", "seconds", "elapsed_seconds", "requests", "failures", "cancelled", "p50_latency_ms", "p95_latency_ms")
    START_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    P50_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    P95_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    seconds: float
    elapsed_seconds: float
    requests: int
    failures: int
    cancelled: int
    p50_latency_ms: float
    p95_latency_ms: float
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seconds: _Optional[float] = ..., elapsed_seconds: _Optional[float] = ..., requests: _Optional[int] = ..., failures: _Optional[int] = ..., cancelled: _Optional[int] = ..., p50_latency_ms: _Optional[float] = ..., p95_latency_ms: _Optional[float] = ...) -> None: ...

class RecentFailure(_message.Message):
    __slots__ = ("time", "request_id", "method", "model", "code", "status", "host", "duration_ms")
    TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    request_id: str
    method: str
    model: str
    code: str
    status: str
    host: str
    duration_ms: float
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., method: _Optional[str] = ..., model: _Optional[str] = ..., code: _Optional[str] = ..., status: _Optional[str] = ..., host: _Optional[str] = ..., duration_ms: _Optional[float] = ...) -> None: ...

class HistoryModelDay(_message.Message):
    __slots__ = ("model", "requests", "failures", "prompt_tokens", "response_tokens")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    model: str
    requests: int
    failures: int
    prompt_tokens: int
    response_tokens: int
    def __init__(self, model: _Optional[str] = ..., requests: _Optional[int] = ..., failures: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., response_tokens: _Optional[int] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("prompt", "model", "system", "suffix", "template", "raw", "images", "format", "max_tokens", "temperature", "top_p", "stop", "seed", "options", "think", "keep_alive", "context", "logprobs", "top_logprobs", "model_defaults", "max_tokens_include_reasoning")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    SUFFIX_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    THINK_FIELD_NUMBER: _ClassVar[int]
    KEEP_ALIVE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    TOP_LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    MODEL_DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_INCLUDE_REASONING_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    model: str
    system: str
    suffix: str
    template: str
    raw: bool
    images: _containers.RepeatedScalarFieldContainer[bytes]
    format: _struct_pb2.Value
    max_tokens: int
    temperature: float
    top_p: float
    stop: _containers.RepeatedScalarFieldContainer[str]
    seed: int
    options: ModelOptions
    think: str
    keep_alive: str
    context: _containers.RepeatedScalarFieldContainer[int]
    logprobs: bool
    top_logprobs: int
    model_defaults: bool
    max_tokens_include_reasoning: bool
    def __init__(self, prompt: _Optional[str] = ..., model: _Optional[str] = ..., system: _Optional[str] = ..., suffix: _Optional[str] = ..., template: _Optional[str] = ..., raw: _Optional[bool] = ..., images: _Optional[_Iterable[bytes]] = ..., format: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., stop: _Optional[_Iterable[str]] = ..., seed: _Optional[int] = ..., options: _Optional[_Union[ModelOptions, _Mapping]] = ..., think: _Optional[str] = ..., keep_alive: _Optional[str] = ..., context: _Optional[_Iterable[int]] = ..., logprobs: _Optional[bool] = ..., top_logprobs: _Optional[int] = ..., model_defaults: _Optional[bool] = ..., max_tokens_include_reasoning: _Optional[bool] = ...) -> None: ...

class GenerateStreamRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: GenerateRequest
    def __init__(self, request: _Optional[_Union[GenerateRequest, _Mapping]] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("response", "thinking", "model", "prompt_tokens", "response_tokens", "total_tokens", "generation_time_ms", "done_reason", "timestamp", "context", "durations", "logprobs", "fallback_from")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    DONE_REASON_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DURATIONS_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FROM_FIELD_NUMBER: _ClassVar[int]
    response: str
    thinking: str
    model: str
    prompt_tokens: int
    response_tokens: int
    total_tokens: int
    generation_time_ms: float
    done_reason: str
    timestamp: _timestamp_pb2.Timestamp
    context: _containers.RepeatedScalarFieldContainer[int]
    durations: Durations
    logprobs: _containers.RepeatedCompositeFieldContainer[TokenLogprob]
    fallback_from: str
    def __init__(self, response: _Optional[str] = ..., thinking: _Optional[str] = ..., model: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., response_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., generation_time_ms: _Optional[float] = ..., done_reason: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., context: _Optional[_Iterable[int]] = ..., durations: _Optional[_Union[Durations, _Mapping]] = ..., logprobs: _Optional[_Iterable[_Union[TokenLogprob, _Mapping]]] = ..., fallback_from: _Optional[str] = ...) -> None: ...

class GenerateStreamResponse(_message.Message):
    __slots__ = ("response", "thinking", "done", "model", "done_reason", "prompt_tokens", "response_tokens", "total_tokens", "generation_time_ms", "time_to_first_token_ms", "tokens_per_second", "timestamp", "context", "durations", "logprobs", "fallback_from")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DONE_REASON_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DURATIONS_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FROM_FIELD_NUMBER: _ClassVar[int]
    response: str
    thinking: str
    done: bool
    model: str
    done_reason: str
    prompt_tokens: int
    response_tokens: int
    total_tokens: int
    generation_time_ms: float
    time_to_first_token_ms: float
    tokens_per_second: float
    timestamp: _timestamp_pb2.Timestamp
    context: _containers.RepeatedScalarFieldContainer[int]
    durations: Durations
    logprobs: _containers.RepeatedCompositeFieldContainer[TokenLogprob]
    fallback_from: str
    def __init__(self, response: _Optional[str] = ..., thinking: _Optional[str] = ..., done: _Optional[bool] = ..., model: _Optional[str] = ..., done_reason: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., response_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., generation_time_ms: _Optional[float] = ..., time_to_first_token_ms: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., context: _Optional[_Iterable[int]] = ..., durations: _Optional[_Union[Durations, _Mapping]] = ..., logprobs: _Optional[_Iterable[_Union[TokenLogprob, _Mapping]]] = ..., fallback_from: _Optional[str] = ...) -> None: ...

class ShowModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class ShowModelResponse(_message.Message):
    __slots__ = ("model", "modelfile", "parameters", "template", "system", "license", "details", "model_info", "capabilities", "modified_at")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODELFILE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    LICENSE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    MODEL_INFO_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    model: str
    modelfile: str
    parameters: str
    template: str
    system: str
    license: str
    details: ModelDetails
    model_info: _struct_pb2.Struct
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    modified_at: str
    def __init__(self, model: _Optional[str] = ..., modelfile: _Optional[str] = ..., parameters: _Optional[str] = ..., template: _Optional[str] = ..., system: _Optional[str] = ..., license: _Optional[str] = ..., details: _Optional[_Union[ModelDetails, _Mapping]] = ..., model_info: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., capabilities: _Optional[_Iterable[str]] = ..., modified_at: _Optional[str] = ...) -> None: ...

class ListRunningModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RunningModel(_message.Message):
    __slots__ = ("name", "model", "size", "size_vram", "digest", "details", "expires_at", "context_length", "host")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SIZE_VRAM_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    name: str
    model: str
    size: int
    size_vram: int
    digest: str
    details: ModelDetails
    expires_at: str
    context_length: int
    host: str
    def __init__(self, name: _Optional[str] = ..., model: _Optional[str] = ..., size: _Optional[int] = ..., size_vram: _Optional[int] = ..., digest: _Optional[str] = ..., details: _Optional[_Union[ModelDetails, _Mapping]] = ..., expires_at: _Optional[str] = ..., context_length: _Optional[int] = ..., host: _Optional[str] = ...) -> None: ...

class ListRunningModelsResponse(_message.Message):
    __slots__ = ("models", "timestamp")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[RunningModel]
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, models: _Optional[_Iterable[_Union[RunningModel, _Mapping]]] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UsageRequest(_message.Message):
    __slots__ = ("since", "until", "group_by")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    group_by: _containers.RepeatedScalarFieldContainer[UsageGroup]
    def __init__(self, since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., group_by: _Optional[_Iterable[_Union[UsageGroup, str]]] = ...) -> None: ...

class UsageRow(_message.Message):
    __slots__ = ("caller", "model", "day", "requests", "prompt_tokens", "response_tokens", "failures", "cancellations", "average_duration_ms")
    CALLER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    CANCELLATIONS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    caller: str
    model: str
    day: str
    requests: int
    prompt_tokens: int
    response_tokens: int
    failures: int
    cancellations: int
    average_duration_ms: float
    def __init__(self, caller: _Optional[str] = ..., model: _Optional[str] = ..., day: _Optional[str] = ..., requests: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., response_tokens: _Optional[int] = ..., failures: _Optional[int] = ..., cancellations: _Optional[int] = ..., average_duration_ms: _Optional[float] = ...) -> None: ...

class UsageResponse(_message.Message):
    __slots__ = ("rows", "since", "until", "store", "all_callers")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    ALL_CALLERS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[UsageRow]
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    store: str
    all_callers: bool
    def __init__(self, rows: _Optional[_Iterable[_Union[UsageRow, _Mapping]]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., store: _Optional[str] = ..., all_callers: _Optional[bool] = ...) -> None: ...
