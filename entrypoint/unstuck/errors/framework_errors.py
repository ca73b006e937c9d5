"""Flask, Django and Litestar catch a view's exception and answer their own 500: tell request_errors which
exception they answer with a *generic* 500, so that unstuck's page replaces it.

Flask and Django send a `got_request_exception` signal, their documented hook, with the exception, before
they build the 500; Litestar calls the app's `after_exception` hooks, to which one is added. Each records
the exception only when the framework's answer would say nothing:
- Flask: not when it propagates the exception (debug or PROPAGATE_EXCEPTIONS: it then reaches
  request_errors as a raise, or Werkzeug's debugger, which renders its own page), nor when the app has a
  handler for 500 / InternalServerError;
- Django: not with DEBUG=True (its technical 500 page) or DEBUG_PROPAGATE_EXCEPTIONS (it raises), nor
  when the project has a handler500 or a 500.html template of its own;
- Litestar: not with debug=True (its debug page), nor when the app or the route has an exception
  handler for it.
Forcing the exception out instead (PROPAGATE_EXCEPTIONS, DEBUG_PROPAGATE_EXCEPTIONS) would change the
user's settings and skip their own 500 handling; a signal changes nothing in the app.
"""

from __future__ import annotations

import sys

from unstuck.errors.request_errors import framework_renders_generic_500


def install(app=None) -> None:
    """Connect to the frameworks the app imported (looked up in sys.modules: none is imported here);
    `app`: the loaded app, which gets the Litestar hook when it is a Litestar app."""
    if "flask" in sys.modules:
        from flask.signals import got_request_exception

        got_request_exception.connect(_flask_exception)  # a module-level function: the weak ref holds
    if "django.core.handlers.base" in sys.modules:
        from django.core.signals import got_request_exception

        got_request_exception.connect(_django_exception, dispatch_uid="unstuck.errors.framework_errors")
    if "litestar" in sys.modules:
        from litestar import Litestar

        if isinstance(app, Litestar) and _litestar_exception not in app.after_exception:
            app.after_exception.append(_litestar_exception)


def _flask_exception(sender, exception: BaseException, **_) -> None:
    propagate = sender.config.get("PROPAGATE_EXCEPTIONS")
    if propagate is None:
        propagate = sender.testing or sender.debug
    if propagate:
        return
    try:
        from flask import request
        from werkzeug.exceptions import InternalServerError

        # What Flask.handle_exception looks up next (a private method, stable since Flask 1.1).
        if sender._find_error_handler(InternalServerError(), request.blueprints) is not None:
            return
    except Exception:  # noqa: BLE001 - cannot tell: the app's own answer is left alone
        return
    framework_renders_generic_500(exception, logged=True)  # Flask logs it (app.logger, "Exception on ...")


def _django_exception(sender, request=None, **_) -> None:
    exc = sys.exc_info()[1]  # Django sends the signal from inside its `except`
    if exc is None:
        return
    try:
        from django.conf import settings

        if settings.DEBUG or settings.DEBUG_PROPAGATE_EXCEPTIONS:
            return
        from django.template import TemplateDoesNotExist, loader
        from django.urls import get_resolver, get_urlconf
        from django.views import defaults

        if get_resolver(get_urlconf()).resolve_error_handler(500) is not defaults.server_error:
            return
        try:
            loader.get_template(defaults.ERROR_500_TEMPLATE_NAME)
            return  # the project's own 500.html
        except TemplateDoesNotExist:
            pass
    except Exception:  # noqa: BLE001 - cannot tell: the app's own answer is left alone
        return
    # Django logs it on "django.request", which its default logging shows on the console only with DEBUG.
    framework_renders_generic_500(exc, logged=False)


async def _litestar_exception(exc: Exception, scope) -> None:
    try:
        from litestar.middleware._internal.exceptions.middleware import get_exception_handler
        from litestar.utils.scope.state import ScopeState

        # (A 404 or a validation error is recorded too, harmlessly: only a 500 is ever replaced.)
        if scope.get("type") != "http" or scope["litestar_app"].debug:
            return
        # What its exception middleware looks up next (internal, as of Litestar 2.9).
        if get_exception_handler(ScopeState.from_scope(scope).exception_handlers, exc) is not None:
            return
    except Exception:  # noqa: BLE001 - cannot tell: the app's own answer is left alone
        return
    # Litestar logs the exception only in debug (log_exceptions="debug", its default).
    framework_renders_generic_500(exc, logged=False)
