"""The channels a Workstream can serve, each declared by its own module."""

from __future__ import annotations

from reconciler.kinds import chat, facebook, gbm
from reconciler.kinds.base import Channel

CHANNELS: tuple[Channel, ...] = (facebook.CHANNEL, gbm.CHANNEL, chat.CHANNEL)
BY_WORD = {channel.word: channel for channel in CHANNELS}
BY_BLOCK = {channel.block: channel for channel in CHANNELS}
BY_CONTEXT = {channel.context: channel for channel in CHANNELS}
