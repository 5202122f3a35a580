"""The exceptions of tapipy.errors that the stand-in raises."""


class BaseTapyException(Exception):
    def __init__(self, msg=None, version=None, request=None, response=None):
        super().__init__(msg)
        self.message = msg
        self.version = version
        self.request = request
        self.response = response


class TapyClientConfigurationError(BaseTapyException):
    pass


class InvalidInputError(BaseTapyException):
    pass


class BadRequestError(BaseTapyException):
    pass


class UnauthorizedError(BaseTapyException):
    pass


class ForbiddenError(BaseTapyException):
    pass


class NotFoundError(BaseTapyException):
    pass


class ServiceUnavailableError(BaseTapyException):
    pass


class InternalServerError(BaseTapyException):
    pass
