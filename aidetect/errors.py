"""InputError: a problem the user can fix (a path, a data folder, a model file, an image).

Each module's own error derives from it, so a command line catches this one class, prints the
message on one line and exits with status 2; anything else is a bug and keeps its traceback.
"""


class InputError(ValueError):
    """What the user gave cannot be used; the message names it and says what to do."""
