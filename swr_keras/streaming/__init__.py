"""Streaming keyword spotting: causal models hop by hop, detection, evaluation."""

from swr_keras.streaming.layers import StreamingTimeBuffer, StreamingTimeMean
from swr_keras.streaming.streaming_model import (
    DEFAULT_WINDOW_FRAMES,
    check_causal,
    reset_states,
    stream_state_variables,
    to_streaming,
    windowed_reference,
)

__all__ = [
    "DEFAULT_WINDOW_FRAMES",
    "StreamingTimeBuffer",
    "StreamingTimeMean",
    "check_causal",
    "reset_states",
    "stream_state_variables",
    "to_streaming",
    "windowed_reference",
]
