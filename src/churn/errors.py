"""The one exception type that means "the user can fix this".

The CLI turns it into a single line on stderr and a non-zero exit, with no
traceback; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem in the input, the params or the environment that the user can fix."""

    exit_code = 2
