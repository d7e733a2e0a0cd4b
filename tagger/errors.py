"""The error type for a user's mistake: CLIs print its message on one line
and exit non-zero, without a traceback."""


class UserError(Exception):
    """Bad input from the user; the message says what was expected, what was
    received and what to do."""


def flags_do_not_apply(flags, where: str, chosen: str = "", instead: str = "") -> UserError:
    """The one error every command gives for flags set where they are not
    read: '--a, --b apply to WHERE only (CHOSEN); leave them out or INSTEAD'.
    `flags`: the flags as typed (`--lr`); `chosen`: what the run uses
    instead; `instead`: the other way out."""
    flags = list(flags)
    one = len(flags) == 1
    text = f"{', '.join(flags)} appl{'ies' if one else 'y'} {where} only"
    if chosen:
        text += f" ({chosen})"
    text += f"; leave {'it' if one else 'them'} out"
    return UserError(text + (f" or {instead}" if instead else ""))
