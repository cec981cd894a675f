"""The exceptions leanconv raises besides ``ValueError`` (bad input), in one light module so
that the command line can catch them without importing the deployment code."""


class FoldError(RuntimeError):
    """The folded model does not reproduce the original (a bug or an unsupported pattern)."""


class ExportError(RuntimeError):
    """The exported model failed the checker or does not match PyTorch."""
