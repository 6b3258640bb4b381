"""Domain errors. They are mapped to HTTP problems and CLI exit codes only in ``api/``."""


class DomainError(Exception):
    """Base class of every rule the domain refuses."""


class UnknownEntityTypeError(DomainError):
    pass


class UnknownActionTypeError(DomainError):
    pass


class InvalidMatchFieldError(DomainError):
    pass


class ActionAlreadyFinishedError(DomainError):
    """The action is completed or cancelled: it takes no more chunks or commands."""


class ActionNotFinishedError(DomainError):
    """The action is still being queued or processed: what was asked needs it finished."""


class AlreadyRevertedError(DomainError):
    """The action has been reverted already (a second revert would undo the first)."""


class CannotRevertError(DomainError):
    """This action cannot be reverted (a revert itself)."""


class AlreadyRetriedError(DomainError):
    """The action's failed rows were submitted again already (retry the retry instead)."""


class CannotRetryError(DomainError):
    """This action's rows cannot be submitted again (a revert, a dry run)."""


class InputNotQueuedError(DomainError):
    """Completion was asked before every chunk of the input was queued."""
