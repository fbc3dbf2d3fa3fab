"""The two ways a job of the library ends early on purpose.

``RBSFError`` is bad input or a state the user must change (a missing root, a corrupt
checkpoint, a clashing output path, a NaN loss): its message is one line that says what is
wrong and how to fix it. The tools print that line and exit with code 2. Every error class of
the library derives from it.

``Interrupted`` is a long job stopped by Ctrl-C, a kill signal or a step budget after it saved
what it had; its message says how to continue.
"""


class RBSFError(Exception):
    """Bad input or an impossible request; the message is one line with the fix."""


class Interrupted(Exception):
    """A long job stopped early (Ctrl-C, SIGTERM or a budget) after saving its work."""
