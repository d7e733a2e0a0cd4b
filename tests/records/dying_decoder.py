"""A clip decoder whose process dies (SIGKILL, as the out-of-memory killer
does) on clips whose path contains MARK; spawned build workers import it."""

import os
import signal

from tagger.records.clip_decoder import decode_clip

MARK = "velvet"


def decode_or_die(task):
    if MARK in task.audio_path:
        os.kill(os.getpid(), signal.SIGKILL)
    return decode_clip(task)
